// Reading another process's memory and CPU time from /proc (Linux only).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { parseStatTicks, parseVmRssKb } from './stats';

let ticksPerSecond: number | undefined;

/** USER_HZ; 100 on every Linux this runs on, but asked once rather than assumed. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export function rssKb(pid: number): number {
  try {
    return parseVmRssKb(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  try {
    return parseStatTicks(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) / clockTicks();
  } catch {
    return NaN;
  }
}

/** CPU seconds of this process, from node itself (cheaper than /proc for our own pid). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Open descriptors of another process (its /proc/<pid>/fd entries); NaN when it is gone or hidden. */
export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}
