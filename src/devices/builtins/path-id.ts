// IMPORT{builtin}="path_id": ID_PATH (and ID_PATH_TAG, ID_PATH_ATA_COMPAT) from the chain of
// parent devices, composed the way udev's path_id builtin does (systemd 252 as Debian 12 ships it,
// with its backports: "usb-0:" instead of the host number).
import { fail, succeed } from './builtin-errors';
import type { Builtin, BuiltinDevice, BuiltinHost, BuiltinResult } from './builtin-types';
import { ancestorWith, sysnum } from './device-chain';

/** The path being built: prepend() puts a component in front ("pci-X" + "-" + "usb-0:1"). */
class PathBuilder {
  value: string | undefined;
  prepend(component: string): void {
    this.value = this.value === undefined ? component : `${component}-${this.value}`;
  }
}

/** udev's skip_subsystem: the topmost device of the run of ancestors in `subsystem`. */
function skipSubsystem(host: BuiltinHost, device: BuiltinDevice, subsystem: string): BuiltinDevice {
  let last = device;
  for (
    let parent: BuiltinDevice | undefined = device;
    parent !== undefined;
    parent = host.parent(last.syspath)
  ) {
    if (parent.subsystem !== subsystem) break;
    last = parent;
  }
  return last;
}

/** Linux only supports 32-bit LUNs (drivers/scsi/scsi_scan.c scsilun_to_int). */
function formatLun(device: BuiltinDevice): string | undefined {
  const num = sysnum(device.sysname);
  if (num === undefined) return undefined;
  const lun = Number(num);
  if (!Number.isSafeInteger(lun)) return undefined;
  if (lun < 256) return `lun-${lun}`;
  const hex = (n: number): string => n.toString(16).padStart(4, '0');
  return `lun-0x${hex(lun % 0x10000)}${hex(Math.floor(lun / 0x10000) % 0x10000)}00000000`;
}

/** sscanf("%u:%u:%u:%u") on a SCSI device's sysname. */
function scsiAddress(sysname: string): [number, number, number, number] | undefined {
  const m = /^\s*\+?(\d+):\s*\+?(\d+):\s*\+?(\d+):\s*\+?(\d+)/.exec(sysname);
  if (m === null) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
}

// In the C code a missing LUN prints "(null)"; format_lun_number fails only on malformed sysnames.
const lunOf = (device: BuiltinDevice): string => formatLun(device) ?? '(null)';

function handleFibreChannel(host: BuiltinHost, parent: BuiltinDevice, path: PathBuilder) {
  const target = ancestorWith(host, parent, 'scsi', 'scsi_target');
  if (target === undefined) return undefined;
  const fc = host.deviceBySubsystemSysname('fc_transport', target.sysname);
  const port = fc && host.readAttr(fc.syspath, 'port_name');
  if (port === undefined) return undefined;
  path.prepend(`fc-${port}-${lunOf(parent)}`);
  return parent;
}

function handleSasWidePort(host: BuiltinHost, parent: BuiltinDevice, path: PathBuilder) {
  const target = ancestorWith(host, parent, 'scsi', 'scsi_target');
  const targetParent = target && host.parent(target.syspath);
  const sas = targetParent && host.deviceBySubsystemSysname('sas_device', targetParent.sysname);
  const address = sas && host.readAttr(sas.syspath, 'sas_address');
  if (address === undefined) return undefined;
  path.prepend(`sas-${address}-${lunOf(parent)}`);
  return parent;
}

function handleSas(host: BuiltinHost, parent: BuiltinDevice, path: PathBuilder) {
  const target = ancestorWith(host, parent, 'scsi', 'scsi_target');
  const targetParent = target && host.parent(target.syspath);
  if (targetParent === undefined) return undefined;
  const targetSas = host.deviceBySubsystemSysname('sas_device', targetParent.sysname);
  if (targetSas === undefined) return undefined;
  const port = host.parent(targetParent.syspath);
  const portSas = port && host.deviceBySubsystemSysname('sas_port', port.sysname);
  const phyCount = portSas && host.readAttr(portSas.syspath, 'num_phys');
  if (port === undefined || phyCount === undefined) return undefined;
  if (phyCount !== '1') return handleSasWidePort(host, parent, path);
  const phyId = host.readAttr(targetSas.syspath, 'phy_identifier');
  if (phyId === undefined) return undefined;
  const expander = host.parent(port.syspath);
  if (expander === undefined) return undefined;
  const expanderSas = host.deviceBySubsystemSysname('sas_device', expander.sysname);
  let address: string | undefined;
  if (expanderSas !== undefined) {
    address = host.readAttr(expanderSas.syspath, 'sas_address');
    if (address === undefined) return undefined;
  }
  const lun = lunOf(parent);
  path.prepend(address !== undefined ? `sas-exp${address}-phy${phyId}-${lun}` : `sas-phy${phyId}-${lun}`);
  return parent;
}

function handleIscsi(host: BuiltinHost, parent: BuiltinDevice, path: PathBuilder) {
  let transport: BuiltinDevice | undefined = parent;
  for (;;) {
    transport = host.parent(transport.syspath);
    if (transport === undefined) return undefined;
    if (transport.sysname.startsWith('session')) break;
  }
  const session = host.deviceBySubsystemSysname('iscsi_session', transport.sysname);
  const target = session && host.readAttr(session.syspath, 'targetname');
  const num = sysnum(transport.sysname);
  if (target === undefined || num === undefined) return undefined;
  const conn = host.deviceBySubsystemSysname('iscsi_connection', `connection${num}:0`);
  const addr = conn && host.readAttr(conn.syspath, 'persistent_address');
  const port = conn && host.readAttr(conn.syspath, 'persistent_port');
  if (addr === undefined || port === undefined) return undefined;
  path.prepend(`ip-${addr}:${port}-iscsi-${target}-${lunOf(parent)}`);
  return parent;
}

function handleAta(host: BuiltinHost, parent: BuiltinDevice, path: PathBuilder, compat: PathBuilder) {
  const address = scsiAddress(parent.sysname);
  if (address === undefined) return undefined;
  const [, bus, target] = address;
  const scsiHost = ancestorWith(host, parent, 'scsi', 'scsi_host');
  const hostParent = scsiHost && host.parent(scsiHost.syspath);
  const ata = hostParent && host.deviceBySubsystemSysname('ata_port', hostParent.sysname);
  const portNo = ata && host.readAttr(ata.syspath, 'port_no');
  if (portNo === undefined) return undefined;
  // Devices behind a port multiplier have bus != 0; master/slave differ by target id.
  path.prepend(bus !== 0 ? `ata-${portNo}.${bus}.0` : `ata-${portNo}.${target}`);
  compat.prepend(`ata-${portNo}`);
  return parent;
}

function handleScsiDefault(host: BuiltinHost, parent: BuiltinDevice, path: PathBuilder) {
  const scsiHost = ancestorWith(host, parent, 'scsi', 'scsi_host');
  if (scsiHost === undefined) return undefined;
  const m = /^\s*([+-]?\d+):\s*([+-]?\d+):\s*([+-]?\d+):\s*([+-]?\d+)/.exec(parent.sysname);
  if (m === null) return undefined;
  let hostNum = Number(m[1]);
  const slash = scsiHost.syspath.lastIndexOf('/');
  if (slash < 0) return undefined;
  const names = host.childNames(scsiHost.syspath.slice(0, slash));
  if (names === undefined) return undefined;
  // udev rebases the global host number on the smallest hostN under the same parent (racy, but
  // it is what existing by-path links were made with).
  let base = -1;
  for (const name of names) {
    const n = /^host(\d+)$/.exec(name);
    if (n === null || name.startsWith('.')) continue;
    const i = Number(n[1]);
    if (base === -1 || i < base) base = i;
  }
  if (base === -1) return scsiHost;
  hostNum -= base;
  // "%u" of an int: negative values print as their unsigned 32-bit form.
  const u = (n: number): number => n >>> 0;
  path.prepend(`scsi-${u(hostNum)}:${u(Number(m[2]))}:${u(Number(m[3]))}:${u(Number(m[4]))}`);
  return scsiHost;
}

function handleHyperv(host: BuiltinHost, parent: BuiltinDevice, path: PathBuilder, guidLen: number) {
  const scsiHost = ancestorWith(host, parent, 'scsi', 'scsi_host');
  const vmbus = scsiHost && host.parent(scsiHost.syspath);
  const guid = vmbus && host.readAttr(vmbus.syspath, 'device_id');
  if (guid === undefined || guid.length < guidLen || guid[0] !== '{' || guid[guidLen - 1] !== '}') {
    return undefined;
  }
  path.prepend(`vmbus-${guid.slice(1, guidLen - 1).replace(/-/g, '')}-${lunOf(parent)}`);
  return parent;
}

interface ChainState {
  path: PathBuilder;
  compat: PathBuilder;
  supportedParent: boolean;
  supportedTransport: boolean;
}

function handleScsi(host: BuiltinHost, parent: BuiltinDevice, state: ChainState) {
  if (parent.devtype !== 'scsi_device') return parent;
  const ieee1394 = host.readAttr(parent.syspath, 'ieee1394_id');
  if (ieee1394 !== undefined) {
    state.path.prepend(`ieee1394-0x${ieee1394}`);
    state.supportedParent = true;
    return skipSubsystem(host, parent, 'scsi');
  }
  // SCSI sysfs has no subsystem for the transport: udev looks at the path.
  const name = parent.syspath;
  if (name.includes('/rport-')) {
    state.supportedParent = true;
    return handleFibreChannel(host, parent, state.path);
  }
  if (name.includes('/end_device-')) {
    state.supportedParent = true;
    return handleSas(host, parent, state.path);
  }
  if (name.includes('/session')) {
    state.supportedParent = true;
    return handleIscsi(host, parent, state.path);
  }
  if (name.includes('/ata')) return handleAta(host, parent, state.path, state.compat);
  if (name.includes('/vmbus_')) return handleHyperv(host, parent, state.path, 37);
  if (name.includes('/VMBUS')) return handleHyperv(host, parent, state.path, 38);
  return handleScsiDefault(host, parent, state.path);
}

/** nvme-subsystem block devices: the controller in the "nvme" class with the same nvmeN. */
function realNvmeParent(host: BuiltinHost, device: BuiltinDevice): BuiltinDevice | undefined {
  const m = /^nvme\d*/.exec(device.sysname);
  if (m === null) return undefined;
  return host.deviceBySubsystemSysname('nvme', m[0]);
}

/** Subsystems whose devices just contribute "<subsystem>-<sysname>" and are then skipped. */
const NAMED_BY_SYSNAME: Record<string, { transport: boolean }> = {
  pci: { transport: false },
  platform: { transport: true },
  acpi: { transport: false },
  xen: { transport: false },
  scm: { transport: true },
  ccw: { transport: true },
  ccwgroup: { transport: true },
  iucv: { transport: true },
};

/** ID_PATH_TAG: [0-9A-Za-z-] kept, other runs become one '_', no leading or trailing '_'. */
export function pathTag(path: string): string {
  let tag = '';
  for (const c of path) {
    if (/[0-9A-Za-z-]/.test(c)) tag += c;
    else if (tag !== '' && !tag.endsWith('_')) tag += '_';
  }
  return tag.replace(/_+$/, '');
}

export const pathId = ((
  _argv: readonly string[],
  device: BuiltinDevice,
  host: BuiltinHost,
): BuiltinResult => {
  const state: ChainState = {
    path: new PathBuilder(),
    compat: new PathBuilder(),
    supportedParent: false,
    supportedTransport: false,
  };
  const { path, compat } = state;
  for (let parent: BuiltinDevice | undefined = device; parent !== undefined;) {
    const subsys = parent.subsystem;
    const named = Object.hasOwn(NAMED_BY_SYSNAME, subsys) ? NAMED_BY_SYSNAME[subsys] : undefined;
    if (subsys === '') {
      // No subsystem: nothing to add, go on to the parent.
    } else if (subsys === 'scsi_tape') {
      // Must be the last device in the syspath.
      const m = /^(n?st)([lma])/.exec(parent.sysname);
      if (path.value === undefined && m !== null) path.prepend(`${m[1]}${m[2]}`);
    } else if (subsys === 'scsi') {
      parent = handleScsi(host, parent, state);
      state.supportedTransport = true;
    } else if (subsys === 'cciss') {
      const m = /^c(\d+)d(\d+)/.exec(parent.sysname);
      if (m === null) parent = undefined;
      else {
        path.prepend(`cciss-disk${Number(m[2])}`);
        parent = skipSubsystem(host, parent, 'cciss');
      }
      state.supportedTransport = true;
    } else if (subsys === 'usb') {
      const dash = parent.sysname.indexOf('-');
      if ((parent.devtype === 'usb_interface' || parent.devtype === 'usb_device') && dash >= 0) {
        // The host number may change across reboots; the topology after it does not.
        path.prepend(`usb-0:${parent.sysname.slice(dash + 1)}`);
        parent = skipSubsystem(host, parent, 'usb');
      }
      state.supportedTransport = true;
    } else if (subsys === 'bcma') {
      const m = /^bcma\d+:(\d+)/.exec(parent.sysname);
      if (m === null) parent = undefined;
      else path.prepend(`bcma-${Number(m[1])}`);
      state.supportedTransport = true;
    } else if (subsys === 'serio' || subsys === 'spi') {
      const num = sysnum(parent.sysname);
      if (num !== undefined) {
        path.prepend(`${subsys === 'serio' ? 'serio' : 'cs'}-${num}`);
        parent = skipSubsystem(host, parent, subsys);
      }
    } else if (named !== undefined) {
      path.prepend(`${subsys}-${parent.sysname}`);
      if (compat.value !== undefined) compat.prepend(`${subsys}-${parent.sysname}`);
      parent = skipSubsystem(host, parent, subsys);
      state.supportedParent = true;
      if (named.transport) state.supportedTransport = true;
    } else if (subsys === 'virtio') {
      parent = skipSubsystem(host, parent, 'virtio');
      state.supportedTransport = true;
    } else if (subsys === 'ap') {
      const type = host.readAttr(parent.syspath, 'type');
      const functions = host.readAttr(parent.syspath, 'ap_functions');
      path.prepend(
        type !== undefined && functions !== undefined ? `ap-${type}-${functions}` : `ap-${parent.sysname}`,
      );
      parent = skipSubsystem(host, parent, 'ap');
      state.supportedTransport = true;
      state.supportedParent = true;
    } else if (subsys === 'nvme' || subsys === 'nvme-subsystem') {
      // The namespace id is read from the device itself, not from this parent.
      const nsid = host.readAttr(device.syspath, 'nsid');
      if (nsid !== undefined) {
        path.prepend(`nvme-${nsid}`);
        if (compat.value !== undefined) compat.prepend(`nvme-${nsid}`);
        if (subsys === 'nvme-subsystem') {
          const real = realNvmeParent(host, device);
          if (real === undefined)
            return fail('ENXIO', `path_id: ${device.devpath}: no nvme controller found`);
          parent = real;
        }
        parent = skipSubsystem(host, parent, 'nvme');
        state.supportedParent = true;
        state.supportedTransport = true;
      }
    }
    if (parent === undefined) break;
    parent = host.parent(parent.syspath);
  }

  if (path.value === undefined || !state.supportedParent) {
    // Unknown parent types might give conflicting ids: udev gives none (ENOENT).
    return fail('ENOENT', `path_id: ${device.devpath}: no persistent path`);
  }
  if (device.subsystem === 'block' && !state.supportedTransport) {
    return fail('ENOENT', `path_id: ${device.devpath}: block device without a well-known transport`);
  }
  const props = new Map<string, string>([
    ['ID_PATH', path.value],
    ['ID_PATH_TAG', pathTag(path.value)],
  ]);
  if (compat.value !== undefined) props.set('ID_PATH_ATA_COMPAT', compat.value);
  return succeed(props);
}) satisfies Builtin;
