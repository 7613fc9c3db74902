/**
 * Reads the generated syscall-table-*.ts: each line is the number of its first system call, then
 * names whose numbers follow one by one (gaps start a new line).
 */
export function syscallTable(runs: string): Readonly<Record<string, number>> {
  const table: Record<string, number> = {};
  for (const line of runs.trim().split('\n')) {
    const [first, ...names] = line.split(' ');
    names.forEach((name, offset) => {
      table[name] = Number(first) + offset;
    });
  }
  return Object.freeze(table);
}
