/**
 * Frames of a virtual screen, read straight from Xvfb's framebuffer file.
 *
 * `Xvfb -fbdir DIR` keeps its screen in DIR/Xvfb_screen0, an XWD image that
 * the server updates in place (mmap). Reading that file is how the rdp probe
 * sees what its RDP client shows, without asking the X server for anything:
 * comparing two reads tells whether a fresh frame arrived, and a read turns
 * into a PNG screenshot for the report. Pure functions, no X libraries.
 */
import { crc32, deflateSync } from 'node:zlib';

export interface XwdLayout {
  width: number;
  height: number;
  /** where the pixels start in the file */
  pixelOffset: number;
  bytesPerLine: number;
  bitsPerPixel: number;
  /** pixel byte order: true when the least significant byte comes first */
  lsbFirst: boolean;
  redMask: number;
  greenMask: number;
  blueMask: number;
}

/** Reads the XWD header (X11 XWDFileHeader: 25 CARD32, written most significant byte first). */
export function parseXwdHeader(buf: Buffer): XwdLayout {
  if (buf.length < 100) throw new Error(`not an XWD image: ${buf.length} bytes`);
  // the header is big-endian by convention; accept a little-endian one too
  const be = buf.readUInt32BE(4) === 7;
  const le = buf.readUInt32LE(4) === 7;
  if (!be && !le) throw new Error('not an XWD image (file_version is not 7)');
  const u = (i: number) => (be ? buf.readUInt32BE(i * 4) : buf.readUInt32LE(i * 4));
  const headerSize = u(0);
  const format = u(2);
  const ncolors = u(19);
  const layout: XwdLayout = {
    width: u(4),
    height: u(5),
    lsbFirst: u(7) === 0,
    bitsPerPixel: u(11),
    bytesPerLine: u(12),
    redMask: u(14),
    greenMask: u(15),
    blueMask: u(16),
    pixelOffset: headerSize + ncolors * 12,
  };
  if (format !== 2) throw new Error(`XWD pixmap format ${format} is not supported (only ZPixmap)`);
  if (layout.bitsPerPixel !== 32 && layout.bitsPerPixel !== 24) {
    throw new Error(`XWD with ${layout.bitsPerPixel} bits per pixel is not supported (use a 24-bit Xvfb screen)`);
  }
  if (layout.pixelOffset + layout.bytesPerLine * layout.height > buf.length) {
    throw new Error('XWD image is shorter than its header says');
  }
  return layout;
}

/** The bytes of the pixel area: what changes when a frame arrives. */
export function pixels(buf: Buffer, layout: XwdLayout): Buffer {
  return buf.subarray(layout.pixelOffset, layout.pixelOffset + layout.bytesPerLine * layout.height);
}

/** True when every pixel is 0 (an empty X screen: the client window is gone). */
export function isBlank(buf: Buffer, layout: XwdLayout): boolean {
  const px = pixels(buf, layout);
  // compare in 64 KiB slices against a shared zero block (memcmp speed)
  for (let off = 0; off < px.length; off += ZERO.length) {
    const slice = px.subarray(off, Math.min(px.length, off + ZERO.length));
    if (!slice.equals(ZERO.subarray(0, slice.length))) return false;
  }
  return true;
}
const ZERO = Buffer.alloc(65536);

function shiftOf(mask: number): number {
  let s = 0;
  while (s < 32 && ((mask >>> s) & 1) === 0) s++;
  return s;
}

/** Encodes the XWD image as an 8-bit RGB PNG. */
export function xwdToPng(buf: Buffer, layout: XwdLayout = parseXwdHeader(buf)): Buffer {
  const { width, height, bytesPerLine, bitsPerPixel, lsbFirst } = layout;
  const bpp = bitsPerPixel / 8;
  const [rs, gs, bs] = [shiftOf(layout.redMask), shiftOf(layout.greenMask), shiftOf(layout.blueMask)];
  const raw = Buffer.alloc((width * 3 + 1) * height);
  let o = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0; // filter: none
    let p = layout.pixelOffset + y * bytesPerLine;
    for (let x = 0; x < width; x++, p += bpp) {
      let v: number;
      if (bpp === 4) v = lsbFirst ? buf.readUInt32LE(p) : buf.readUInt32BE(p);
      else v = lsbFirst ? buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) : (buf[p]! << 16) | (buf[p + 1]! << 8) | buf[p + 2]!;
      raw[o++] = (v >>> rs) & 0xff;
      raw[o++] = (v >>> gs) & 0xff;
      raw[o++] = (v >>> bs) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 6 })), chunk('IEND', Buffer.alloc(0))]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(Buffer.from(type, 'ascii'))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}
