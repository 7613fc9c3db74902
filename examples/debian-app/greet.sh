#!/bin/sh
echo "hello from $(cat /etc/debian_version) as $(id -un)"
