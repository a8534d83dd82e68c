// The addresses of .socket units as systemd.socket(5) writes them, parsed into the SocketAddress
// the native layer binds, and printed back for `status` and for the instance names of Accept=yes
// connections (systemd's socket.c instance_from_socket). Pure: no I/O; an interface name after
// '%' is resolved through a function the caller passes.
//
//   ListenStream=80               [::]:80, dual stack (BindIPv6Only= decides)
//   ListenStream=1.2.3.4:80       IPv4
//   ListenStream=[::1]:80         IPv6; a scope as [fe80::1%eth0]:80 or, systemd's spelling, [fe80::1]:80%eth0
//   ListenStream=/run/foo.sock    a unix socket in the file system
//   ListenStream=@foo             a unix socket in the abstract namespace
//   ListenStream=vsock:2:1234     AF_VSOCK, CID and port (vsock::1234 is any CID)
//   ListenNetlink=kobject-uevent 1  a netlink family (name or number) and multicast group
import { isIPv4, isIPv6 } from 'node:net';
import type { SocketAddress, SocketKind } from '../native/socket-addon';
import { fail, ok, type ParseResult } from './value-parsers';

/** sizeof(sockaddr_un.sun_path) minus the NUL a file-system path needs. */
export const UNIX_PATH_MAX = 107;
/** VMADDR_CID_ANY */
export const VSOCK_CID_ANY = 0xffffffff;

/** The netlink families systemd's netlink_family_from_string() knows, with <linux/netlink.h>'s numbers. */
export const NETLINK_FAMILIES: Readonly<Record<string, number>> = {
  route: 0,
  firewall: 3,
  'inet-diag': 4,
  'sock-diag': 4,
  nflog: 5,
  xfrm: 6,
  selinux: 7,
  iscsi: 8,
  audit: 9,
  'fib-lookup': 10,
  connector: 11,
  netfilter: 12,
  'ip6-fw': 13,
  dnrtmsg: 14,
  'kobject-uevent': 15,
  generic: 16,
  scsitransport: 18,
  ecryptfs: 19,
  rdma: 20,
  crypto: 21,
  smc: 22,
};

/** Resolves an interface name to its index (if_nametoindex); undefined when there is none. */
export type InterfaceIndex = (name: string) => number | undefined;

export interface AddressParseOptions {
  /** For scopes given by name ('%eth0'); without it only numeric scopes are accepted. */
  interfaceIndex?: InterfaceIndex;
}

function parsePort(text: string): ParseResult<number> {
  if (!/^[0-9]{1,5}$/.test(text)) return fail(`not a port number: ${JSON.stringify(text)}`);
  const port = Number(text);
  if (port < 1 || port > 65535) return fail(`port out of range (1-65535): ${port}`);
  return ok(port);
}

function parseScope(text: string, options: AddressParseOptions): ParseResult<number> {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    return n > 0 && n <= 0x7fffffff ? ok(n) : fail(`interface index out of range: ${text}`);
  }
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(text)) return fail(`not an interface name: ${JSON.stringify(text)}`);
  const index = options.interfaceIndex?.(text);
  if (index === undefined) return fail(`no network interface named ${JSON.stringify(text)}`);
  return ok(index);
}

function parseUnixPath(text: string): ParseResult<SocketAddress> {
  if (text.startsWith('@')) {
    if (text.length === 1) return fail('abstract socket name is empty');
    if (Buffer.byteLength(text, 'utf8') - 1 > UNIX_PATH_MAX)
      return fail(`abstract socket name longer than ${UNIX_PATH_MAX} bytes`);
    return ok({ family: 'unix', path: text });
  }
  if (text.includes('\0')) return fail('path contains a NUL byte');
  const normal = text.replace(/\/{2,}/g, '/');
  if (normal.split('/').some((p) => p === '..')) return fail(`path contains "..": ${JSON.stringify(text)}`);
  if (Buffer.byteLength(normal, 'utf8') > UNIX_PATH_MAX) {
    return fail(
      `unix socket path longer than ${UNIX_PATH_MAX} bytes (the kernel's sun_path limit): ${JSON.stringify(text)}`,
    );
  }
  return ok({ family: 'unix', path: normal.length > 1 ? normal.replace(/\/$/, '') : normal });
}

/**
 * ListenStream=/ListenDatagram=/ListenSequentialPacket= values. Sequential-packet sockets are
 * unix sockets only, as in systemd.
 */
export function parseSocketAddress(
  text: string,
  kind: SocketKind,
  options: AddressParseOptions = {},
): ParseResult<SocketAddress> {
  const t = text.trim();
  if (t === '') return fail('empty address');
  if (t.startsWith('/') || t.startsWith('@')) return parseUnixPath(t);
  if (kind === 'seqpacket') {
    return fail(
      `ListenSequentialPacket= takes a unix socket path (/path or @abstract), not ${JSON.stringify(t)}`,
    );
  }
  if (t.startsWith('vsock:')) {
    const m = /^vsock:([^:]*):([^:]+)$/.exec(t);
    if (m === null) return fail(`not a vsock address (vsock:CID:PORT): ${JSON.stringify(t)}`);
    let cid = VSOCK_CID_ANY;
    if (m[1] !== '') {
      if (!/^[0-9]{1,10}$/.test(m[1] as string) || Number(m[1]) > 0xffffffff)
        return fail(`not a vsock CID: ${JSON.stringify(m[1])}`);
      cid = Number(m[1]);
    }
    if (!/^[0-9]{1,10}$/.test(m[2] as string) || Number(m[2]) > 0xffffffff)
      return fail(`not a vsock port: ${JSON.stringify(m[2])}`);
    return ok({ family: 'vsock', cid, port: Number(m[2]) });
  }
  if (/^[0-9]+$/.test(t)) {
    const port = parsePort(t);
    if (!port.ok) return port;
    return ok({ family: 'inet6', host: '::', port: port.value });
  }
  if (t.startsWith('[')) {
    // [addr]:port, [addr%scope]:port or systemd's [addr]:port%scope
    const m = /^\[([^\]]+)\]:([0-9]+)(?:%(.+))?$/.exec(t);
    if (m === null) return fail(`not an IPv6 address and port ([ADDRESS]:PORT): ${JSON.stringify(t)}`);
    let host = m[1] as string;
    let scopeText = m[3];
    const pct = host.indexOf('%');
    if (pct >= 0) {
      if (scopeText !== undefined) return fail(`two interface scopes in ${JSON.stringify(t)}`);
      scopeText = host.slice(pct + 1);
      host = host.slice(0, pct);
    }
    if (!isIPv6(host)) return fail(`not an IPv6 address: ${JSON.stringify(host)}`);
    const port = parsePort(m[2] as string);
    if (!port.ok) return port;
    if (scopeText === undefined) return ok({ family: 'inet6', host, port: port.value });
    const scope = parseScope(scopeText, options);
    if (!scope.ok) return scope;
    return ok({ family: 'inet6', host, port: port.value, scopeId: scope.value });
  }
  const colon = t.lastIndexOf(':');
  if (colon > 0 && !t.slice(0, colon).includes(':')) {
    const host = t.slice(0, colon);
    if (!isIPv4(host)) {
      return fail(
        `not an IPv4 address: ${JSON.stringify(host)} (host names are not resolved; write an address)`,
      );
    }
    const port = parsePort(t.slice(colon + 1));
    if (!port.ok) return port;
    return ok({ family: 'inet', host, port: port.value });
  }
  if (isIPv6(t) || isIPv4(t)) return fail(`${JSON.stringify(t)} has no port`);
  return fail(
    `not a socket address: ${JSON.stringify(t)} (expected PORT, ADDRESS:PORT, [IPV6]:PORT, /path, @abstract or vsock:CID:PORT)`,
  );
}

/** ListenNetlink= "FAMILY [GROUP]": a family name or number and a multicast group (default 0). */
export function parseNetlinkAddress(text: string): ParseResult<SocketAddress> {
  const words = text.trim().split(/\s+/);
  if (words.length === 0 || words[0] === '' || words.length > 2)
    return fail(`not a netlink address (FAMILY [GROUP]): ${JSON.stringify(text)}`);
  const name = words[0] as string;
  // Own keys only: 'valueOf' would find Object.prototype's function.
  let protocol = Object.prototype.hasOwnProperty.call(NETLINK_FAMILIES, name)
    ? NETLINK_FAMILIES[name]
    : undefined;
  if (protocol === undefined && /^[0-9]{1,2}$/.test(name) && Number(name) < 32) protocol = Number(name);
  if (protocol === undefined) return fail(`unknown netlink family ${JSON.stringify(name)}`);
  let group = 0;
  if (words.length === 2) {
    const g = words[1] as string;
    if (!/^[0-9]{1,10}$/.test(g) || Number(g) > 0xffffffff)
      return fail(`not a netlink group: ${JSON.stringify(g)}`);
    group = Number(g);
  }
  return ok({ family: 'netlink', protocol, group });
}

/** Whether connections can be accepted on a socket of this kind at this address (Accept=yes). */
export function canAccept(kind: SocketKind, address: SocketAddress): boolean {
  return (kind === 'stream' || kind === 'seqpacket') && address.family !== 'netlink';
}

/** The file-system path a socket address occupies, if any (Symlinks=, RemoveOnStop=). */
export function addressPath(address: SocketAddress): string | undefined {
  return address.family === 'unix' && address.path.startsWith('/') ? address.path : undefined;
}

const NETLINK_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(NETLINK_FAMILIES))
  if (!NETLINK_NAMES.has(n)) NETLINK_NAMES.set(n, name);

/** The address as systemd prints it (socket_address_print): [::]:80, 1.2.3.4:80, /path, @name, vsock:2:80. */
export function formatSocketAddress(address: SocketAddress): string {
  switch (address.family) {
    case 'inet':
      return `${address.host}:${address.port}`;
    case 'inet6':
      return `[${address.host}]:${address.port}${address.scopeId !== undefined ? `%${address.scopeId}` : ''}`;
    case 'unix':
      return address.path;
    case 'vsock':
      return `vsock:${address.cid === VSOCK_CID_ANY ? '' : address.cid}:${address.port}`;
    case 'netlink':
      return `${NETLINK_NAMES.get(address.protocol) ?? address.protocol} ${address.group}`;
  }
}

/** An IPv4 address mapped into IPv6 (::ffff:1.2.3.4), as its IPv4 form; undefined otherwise. */
export function mappedIPv4(host: string): string | undefined {
  const m = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(host);
  return m !== null ? m[1] : undefined;
}

/** Where a connection comes from, for REMOTE_ADDR/REMOTE_PORT (IP peers only). */
export function remoteEnvironment(remote: SocketAddress): Record<string, string> {
  if (remote.family === 'inet') return { REMOTE_ADDR: remote.host, REMOTE_PORT: String(remote.port) };
  if (remote.family === 'inet6') {
    return { REMOTE_ADDR: mappedIPv4(remote.host) ?? remote.host, REMOTE_PORT: String(remote.port) };
  }
  return {};
}

/**
 * The instance part of an Accept=yes service name, exactly as systemd's instance_from_socket()
 * makes it: "NR-LOCAL:PORT-REMOTE:PORT" for IP (IPv4-mapped pairs printed as IPv4), "NR-PID-UID"
 * for unix peers ("NR-unknown" without credentials), "NR-CID:PORT-CID:PORT" for vsock.
 */
export function connectionInstance(
  nr: number,
  local: SocketAddress,
  remote: SocketAddress,
  peer: { pid: number; uid: number },
): string {
  if (local.family === 'inet' && remote.family === 'inet') {
    return `${nr}-${local.host}:${local.port}-${remote.host}:${remote.port}`;
  }
  if (local.family === 'inet6' && remote.family === 'inet6') {
    const a = mappedIPv4(local.host);
    const b = mappedIPv4(remote.host);
    if (a !== undefined && b !== undefined) return `${nr}-${a}:${local.port}-${b}:${remote.port}`;
    return `${nr}-${local.host}:${local.port}-${remote.host}:${remote.port}`;
  }
  if (local.family === 'unix') {
    return peer.pid > 0 ? `${nr}-${peer.pid}-${peer.uid}` : `${nr}-unknown`;
  }
  if (local.family === 'vsock' && remote.family === 'vsock') {
    return `${nr}-${local.cid}:${local.port}-${remote.cid}:${remote.port}`;
  }
  return `${nr}-unknown`;
}

/**
 * What MaxConnectionsPerSource= counts by: the IP address (IPv4-mapped as IPv4), the VSOCK CID, or
 * the unix peer's uid (systemd's newer behaviour). Undefined when the source cannot be told.
 */
export function sourceKey(remote: SocketAddress, peerUid: number): string | undefined {
  switch (remote.family) {
    case 'inet':
      return remote.host;
    case 'inet6':
      return mappedIPv4(remote.host) ?? remote.host;
    case 'vsock':
      return `vsock:${remote.cid}`;
    case 'unix':
      return peerUid >= 0 ? `uid:${peerUid}` : undefined;
    default:
      return undefined;
  }
}
