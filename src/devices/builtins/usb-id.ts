// IMPORT{builtin}="usb_id": vendor, model, serial and interface list of the USB device a device
// hangs off, named as udev's usb_id builtin names them (systemd 252 as Debian 12 ships it, which
// also exports every value again with an ID_USB_ prefix). For USB mass storage speaking SCSI or
// ATAPI the SCSI inquiry data (vendor, model, rev, type) win over the USB strings.
import { fail, succeed } from './builtin-errors';
import type { Builtin, BuiltinDevice, BuiltinHost, BuiltinResult } from './builtin-types';
import { ancestorWith } from './device-chain';
import { encodeString, replaceWhitespaceAndChars } from './udev-strings';

/** udev copies vendor, model and revision into 64-byte buffers, the serial into a 512-byte one. */
const SHORT = 63;
const UDEV_NAME_SIZE = 512;

function usbInterfaceType(ifClass: number): string {
  const types: Record<number, string> = {
    0x01: 'audio',
    0x03: 'hid',
    0x06: 'media',
    0x07: 'printer',
    0x08: 'storage',
    0x09: 'hub',
    0x0e: 'video',
  };
  return types[ifClass] ?? 'generic';
}

/** safe_atoi / safe_atou: optional whitespace and sign, decimal, whole string. */
function parseDecimal(text: string): number | undefined {
  const m = /^[ \t\n\r]*([+-]?\d+)$/.exec(text);
  return m === null ? undefined : Number(m[1]);
}

function massStorageType(subclass: string): { type: string; protocol: number } {
  const protocol = parseDecimal(subclass) ?? 0;
  const types: Record<number, string> = { 1: 'rbc', 2: 'atapi', 3: 'tape', 4: 'floppy', 6: 'scsi' };
  return { type: types[protocol] ?? 'generic', protocol };
}

function scsiType(text: string): string {
  const n = parseDecimal(text);
  if (n === 0 || n === 0xe) return 'disk';
  if (n === 1) return 'tape';
  if (n === 4 || n === 7 || n === 0xf) return 'optical';
  if (n === 5) return 'cd';
  return 'generic';
}

/**
 * The interfaces of a USB device as ":CCSSPP:CCSSPP:" (class, subclass, protocol), each once,
 * from its raw `descriptors` attribute. Mirrors dev_if_packed_info(), including its quirks: a
 * descriptor that claims more bytes than there are stops the scan without the closing ':'.
 */
export function packedInterfaces(descriptors: Buffer | undefined): string {
  if (descriptors === undefined || descriptors.length < 18) return '';
  const size = descriptors.length;
  let out = '';
  let pos = 0;
  while (pos + 9 < size && out.length + 7 < UDEV_NAME_SIZE - 2) {
    const length = descriptors[pos]!;
    if (length < 3) break;
    if (length > size - 9) return out;
    const at = pos;
    pos += length;
    if (descriptors[at + 1] !== 0x04) continue; // USB_DT_INTERFACE
    const hex = (b: number): string => b.toString(16).padStart(2, '0');
    const entry = `:${hex(descriptors[at + 5]!)}${hex(descriptors[at + 6]!)}${hex(descriptors[at + 7]!)}`;
    if (out.includes(entry)) continue;
    out += entry;
  }
  return out === '' ? out : `${out}:`;
}

interface Identity {
  vendor: string;
  vendorEnc: string;
  model: string;
  modelEnc: string;
  revision: string;
  type: string;
  instance: string;
}

/** SCSI inquiry data of the scsi_device above `device`, or undefined to fall back to USB's. */
function scsiIdentity(host: BuiltinHost, device: BuiltinDevice, id: Identity): boolean {
  const scsi = ancestorWith(host, device, 'scsi', 'scsi_device');
  if (scsi === undefined) return false;
  const m = /^\s*([+-]?\d+):\s*([+-]?\d+):\s*([+-]?\d+):\s*([+-]?\d+)/.exec(scsi.sysname);
  if (m === null) return false;
  // udev fills these in one by one and stops at the first missing attribute, keeping the rest.
  const vendor = host.readAttr(scsi.syspath, 'vendor');
  if (vendor === undefined) return false;
  id.vendorEnc = encodeString(vendor, 'systemd');
  id.vendor = replaceWhitespaceAndChars(vendor, SHORT);
  const model = host.readAttr(scsi.syspath, 'model');
  if (model === undefined) return false;
  id.modelEnc = encodeString(model, 'systemd');
  id.model = replaceWhitespaceAndChars(model, SHORT);
  const type = host.readAttr(scsi.syspath, 'type');
  if (type === undefined) return false;
  id.type = scsiType(type);
  const rev = host.readAttr(scsi.syspath, 'rev');
  if (rev === undefined) return false;
  id.revision = replaceWhitespaceAndChars(rev, SHORT);
  // Some broken devices report the same identifiers on every LUN: export target:lun.
  id.instance = `${Number(m[3])}:${Number(m[4])}`;
  return true;
}

export const usbId = ((_argv: readonly string[], device: BuiltinDevice, host: BuiltinHost): BuiltinResult => {
  const id: Identity = {
    vendor: '',
    vendorEnc: '',
    model: '',
    modelEnc: '',
    revision: '',
    type: '',
    instance: '',
  };
  let ifnum: string | undefined;
  let driver: string | undefined;
  let usbDevice: BuiltinDevice;
  if (device.devtype === 'usb_device') {
    // Called for the USB device itself: no interface, no mass-storage lookup.
    usbDevice = device;
  } else {
    const iface = ancestorWith(host, device, 'usb', 'usb_interface');
    if (iface === undefined) return fail('ENODEV', `usb_id: ${device.devpath} is not below a USB interface`);
    ifnum = host.readAttr(iface.syspath, 'bInterfaceNumber');
    driver = host.readAttr(iface.syspath, 'driver');
    const ifClassText = host.readAttr(iface.syspath, 'bInterfaceClass');
    if (ifClassText === undefined) return fail('ENOENT', `usb_id: ${iface.devpath} has no bInterfaceClass`);
    const ifClassMatch = /^[ \t\n\r]*\+?(?:0[xX])?([0-9a-fA-F]+)$/.exec(ifClassText);
    if (ifClassMatch === null) return fail('EINVAL', `usb_id: bad bInterfaceClass '${ifClassText}'`);
    const ifClass = parseInt(ifClassMatch[1]!, 16);
    let protocol = 0;
    if (ifClass === 8) {
      const subclass = host.readAttr(iface.syspath, 'bInterfaceSubClass');
      if (subclass !== undefined) ({ type: id.type, protocol } = massStorageType(subclass));
    } else {
      id.type = usbInterfaceType(ifClass);
    }
    const parentUsb = ancestorWith(host, iface, 'usb', 'usb_device');
    if (parentUsb === undefined) return fail('ENODEV', `usb_id: ${iface.devpath} has no USB device above it`);
    usbDevice = parentUsb;
    // Mass storage speaking SCSI (6) or ATAPI (2): the SCSI device knows better.
    if (protocol === 6 || protocol === 2) scsiIdentity(host, device, id);
  }
  const packed = packedInterfaces(host.readAttrBytes(usbDevice.syspath, 'descriptors'));

  const vendorId = host.readAttr(usbDevice.syspath, 'idVendor');
  if (vendorId === undefined) return fail('ENOENT', `usb_id: ${usbDevice.devpath} has no idVendor`);
  const productId = host.readAttr(usbDevice.syspath, 'idProduct');
  if (productId === undefined) return fail('ENOENT', `usb_id: ${usbDevice.devpath} has no idProduct`);

  if (id.vendor === '') {
    const vendor = host.readAttr(usbDevice.syspath, 'manufacturer') ?? vendorId;
    id.vendorEnc = encodeString(vendor, 'systemd');
    id.vendor = replaceWhitespaceAndChars(vendor, SHORT);
  }
  if (id.model === '') {
    const model = host.readAttr(usbDevice.syspath, 'product') ?? productId;
    id.modelEnc = encodeString(model, 'systemd');
    id.model = replaceWhitespaceAndChars(model, SHORT);
  }
  if (id.revision === '') {
    const rev = host.readAttr(usbDevice.syspath, 'bcdDevice');
    if (rev !== undefined) id.revision = replaceWhitespaceAndChars(rev, SHORT);
  }
  let serialShort = '';
  const usbSerial = host.readAttr(usbDevice.syspath, 'serial');
  // Serials with control characters, non-ASCII or ',' are ignored (as Windows does).
  if (usbSerial !== undefined && !/[^\x20-\x7f]|,/.test(usbSerial)) {
    serialShort = replaceWhitespaceAndChars(usbSerial, UDEV_NAME_SIZE - 1);
  }
  let serial = `${id.vendor}_${id.model}`;
  if (serialShort !== '') serial += `_${serialShort}`;
  if (id.instance !== '') serial += `-${id.instance}`;
  serial = Buffer.from(serial, 'utf8').subarray(0, 255).toString('utf8');

  const props = new Map<string, string>();
  const values: [string, string][] = [
    ['MODEL', id.model],
    ['MODEL_ENC', id.modelEnc],
    ['MODEL_ID', productId],
    ['SERIAL', serial],
    ...(serialShort !== '' ? ([['SERIAL_SHORT', serialShort]] as [string, string][]) : []),
    ['VENDOR', id.vendor],
    ['VENDOR_ENC', id.vendorEnc],
    ['VENDOR_ID', vendorId],
    ['REVISION', id.revision],
    ...(id.type !== '' ? ([['TYPE', id.type]] as [string, string][]) : []),
    ...(id.instance !== '' ? ([['INSTANCE', id.instance]] as [string, string][]) : []),
  ];
  // A device that already has ID_BUS (from ata_id or scsi_id) keeps its ID_* and gets only ID_USB_*.
  if (!device.properties.has('ID_BUS')) {
    props.set('ID_BUS', 'usb');
    for (const [key, value] of values) props.set(`ID_${key}`, value);
  }
  for (const [key, value] of values) props.set(`ID_USB_${key}`, value);
  if (packed !== '') props.set('ID_USB_INTERFACES', packed);
  if (ifnum !== undefined) props.set('ID_USB_INTERFACE_NUM', ifnum);
  if (driver !== undefined) props.set('ID_USB_DRIVER', driver);
  return succeed(props);
}) satisfies Builtin;
