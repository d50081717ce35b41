/** Where the installed package keeps things: the defaults both programs share. */

/** The config file gatewayc and gatewayctl read when none is named. */
export const DEFAULT_CONFIG = '/etc/gatewayc/gatewayc.conf';

/** The service's group (the package's sysusers entry): who may use the control socket. */
export const SERVICE_GROUP = 'gatewayc';
