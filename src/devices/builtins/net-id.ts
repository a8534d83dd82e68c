// IMPORT{builtin}="net_id": the predictable interface *names* as properties (ID_NET_NAME_MAC,
// ID_NET_NAME_PATH, ID_NET_NAME_SLOT, ID_NET_NAME_ONBOARD), following systemd 252's naming
// scheme "v252". triggerd never renames an interface: these are properties for rules and units.
// Covered: Ethernet/WLAN/WWAN/InfiniBand prefixes, MAC names for permanent addresses, PCI path
// names (domain, bus, slot, function of multi-function devices, dev_port), hotplug slots and
// firmware (ACPI/SMBIOS) onboard indexes. Not covered: USB, BCMA, CCW, vio, xen, platform, netdevsim.
import { succeed } from './builtin-errors';
import type { Builtin, BuiltinDevice, BuiltinHost } from './builtin-types';

export const NAMING_SCHEME = 'v252';

const ARPHRD_ETHER = 1;
const ARPHRD_INFINIBAND = 32;
const ARPHRD_SLIP = 256;

function prefixOf(device: BuiltinDevice, type: number): string | undefined {
  if (type === ARPHRD_INFINIBAND) return 'ib';
  if (type === ARPHRD_SLIP) return 'sl';
  if (type !== ARPHRD_ETHER) return undefined;
  const devtype = device.devtype ?? device.properties.get('DEVTYPE');
  if (devtype === 'wlan') return 'wl';
  if (devtype === 'wwan') return 'ww';
  return 'en';
}

function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isInteger(n) ? n : undefined;
}

/** The PCI device the interface hangs off: the nearest ancestor in subsystem "pci". */
function pciParent(host: BuiltinHost, device: BuiltinDevice): BuiltinDevice | undefined {
  for (let p = host.parent(device.syspath); p !== undefined; p = host.parent(p.syspath)) {
    if (p.subsystem === 'pci') return p;
  }
  return undefined;
}

/** Header type bit 7 in PCI config space: the device has several functions. */
function isMultifunction(host: BuiltinHost, pci: BuiltinDevice): boolean {
  const config = host.readAttrBytes(pci.syspath, 'config');
  if (config === undefined || config.length < 15) return false;
  return ((config[14] as number) & 0x80) !== 0;
}

/** The hotplug slot of the PCI device: /sys/bus/pci/slots/N/address equals its domain:bus:slot. */
function hotplugSlot(
  host: BuiltinHost,
  pci: BuiltinDevice,
  sysRootOf: (p: string) => string,
): number | undefined {
  const slotsDir = `${sysRootOf(pci.syspath)}/bus/pci/slots`;
  const names = host.childNames(slotsDir);
  if (names === undefined) return undefined;
  const address = pci.sysname.replace(/\.[0-9a-f]+$/i, '');
  for (const name of names) {
    if (host.readAttr(`${slotsDir}/${name}`, 'address') === address) {
      const n = num(name);
      if (n !== undefined) return n;
    }
  }
  return undefined;
}

export const netId: Builtin = (_argv, device, host) => {
  // Link types without a naming prefix (loopback, tunnels, ...) get nothing at all, as in udev.
  const type = num(host.readAttr(device.syspath, 'type'));
  const prefix = type === undefined ? undefined : prefixOf(device, type);
  if (prefix === undefined) return succeed(new Map());
  const props = new Map<string, string>([['ID_NET_NAMING_SCHEME', NAMING_SCHEME]]);
  // An interface whose parent is not a device (virtual ones) gets no hardware-based names.
  const iflink = num(host.readAttr(device.syspath, 'iflink'));
  const ifindex = num(host.readAttr(device.syspath, 'ifindex'));
  if (iflink !== undefined && ifindex !== undefined && iflink !== ifindex) return succeed(props);

  // MAC: only for a permanent address (addr_assign_type 0).
  const assign = num(host.readAttr(device.syspath, 'addr_assign_type'));
  const address = host.readAttr(device.syspath, 'address');
  if (assign === 0 && address !== undefined && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(address)) {
    if (address !== '00:00:00:00:00:00')
      props.set('ID_NET_NAME_MAC', `${prefix}x${address.replace(/:/g, '').toLowerCase()}`);
  }

  const pci = pciParent(host, device);
  if (pci !== undefined) {
    const m = /^([0-9a-f]{4,}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-9a-f])$/i.exec(pci.sysname);
    if (m !== null) {
      const domain = parseInt(m[1] as string, 16);
      const bus = parseInt(m[2] as string, 16);
      const slot = parseInt(m[3] as string, 16);
      const func = parseInt(m[4] as string, 16);
      const devPort = num(host.readAttr(device.syspath, 'dev_port')) ?? 0;
      const dom = domain > 0 ? `P${domain}` : '';
      const fn = func > 0 || isMultifunction(host, pci) ? `f${func}` : '';
      const port = devPort > 0 ? `d${devPort}` : '';
      props.set('ID_NET_NAME_PATH', `${prefix}${dom}p${bus}s${slot}${fn}${port}`);
      const sysRootOf = (p: string): string => p.slice(0, p.indexOf('/devices/'));
      const hslot = hotplugSlot(host, pci, sysRootOf);
      if (hslot !== undefined) props.set('ID_NET_NAME_SLOT', `${prefix}${dom}s${hslot}${fn}${port}`);
      const acpiIndex = num(host.readAttr(pci.syspath, 'acpi_index'));
      const smbiosIndex = num(host.readAttr(pci.syspath, 'index'));
      const onboard = acpiIndex !== undefined && acpiIndex > 0 ? acpiIndex : smbiosIndex;
      if (onboard !== undefined && onboard > 0 && onboard <= 16383)
        props.set('ID_NET_NAME_ONBOARD', `${prefix}o${onboard}${port}`);
    }
  }
  return succeed(props);
};
