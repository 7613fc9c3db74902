/**
 * What to tell a user whose container cannot isolate RUN steps, in the words of Kubernetes pod
 * settings; shared by every message that refuses a mode for want of privileges.
 */

/** For root without CAP_SYS_ADMIN. */
export const withoutSysAdmin = 'Without it (an unprivileged container or Kubernetes pod), build as root with --isolation=none, in place as kaniko does';

/** For an unprivileged user without user namespaces. */
export const needsRootOrUserNamespaces =
  'RUN steps need root (then --isolation=none builds in place) or user namespaces (then --isolation=rootless): in Kubernetes set runAsUser: 0, or hostUsers: false; builds with only COPY and ADD need neither';
