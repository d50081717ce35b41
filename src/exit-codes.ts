/**
 * Exit statuses of gatewayc and gatewayctl. 64 and 78 are sysexits.h's EX_USAGE and
 * EX_CONFIG; the unit's RestartPreventExitStatus=78 keeps systemd from restarting a
 * daemon whose configuration is broken.
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  conLost: 2,
  unreachable: 3,
  denied: 4,
  usage: 64,
  config: 78,
} as const;
