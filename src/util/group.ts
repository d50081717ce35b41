import * as fs from 'node:fs';

/**
 * Resolves a group name to its gid from /etc/group (node has no getgrnam). A number is
 * taken as a gid. Throws with a clear message when the group does not exist.
 */
export function groupId(name: string, groupFile = '/etc/group'): number {
  if (/^\d+$/.test(name)) return Number(name);
  const text = fs.readFileSync(groupFile, 'utf8');
  for (const line of text.split('\n')) {
    const [gname, , gid] = line.split(':');
    if (gname === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new Error(`group ${name} does not exist (gatewaycSocketGroup)`);
}
