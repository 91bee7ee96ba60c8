// tar.js: packs files picked in the browser (one file, or a folder with `webkitdirectory`)
// as a ustar archive, gzips it with the browser's CompressionStream and gives it as base64:
// the `source` of `PUT …/functions/{fn}/code`. Like the CLI's packer: regular files and their
// directories only, paths relative to the picked folder, sorted, owner 0:0, time 0.

/** The CLI's bounds on a source (crates/cli/src/commands/code.rs): checked before packing. */
export const MAX_SOURCE_BYTES = 64 * 1024 * 1024;
export const MAX_SOURCE_ENTRIES = 10000;

const encoder = new TextEncoder();

/** Writes `text` (ASCII/UTF-8) into `block` at `offset`, at most `length` bytes. */
function put(block, offset, length, text) {
  const bytes = encoder.encode(text);
  if (bytes.length > length) throw new Error(`"${text}" is too long for a tar header field`);
  block.set(bytes, offset);
}

/** An octal number field: `length - 1` digits and a NUL. */
function octal(block, offset, length, value) {
  const digits = value.toString(8);
  if (digits.length > length - 1) throw new Error(`${value} does not fit a tar header field`);
  put(block, offset, length, digits.padStart(length - 1, "0") + "\0");
}

/** Splits a path over ustar's `name` (100 bytes) and `prefix` (155 bytes) at a `/`. */
function splitName(path) {
  const bytes = encoder.encode(path).length;
  if (bytes <= 100) return { name: path, prefix: "" };
  for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(name).length <= 100 && name) {
      return { name, prefix };
    }
  }
  throw new Error(`the path "${path}" is too long for a tar archive (ustar: 100 bytes, or 155 + 100 split at a "/"); rename it`);
}

/** One 512-byte ustar header. `kind` is "0" (file) or "5" (directory). */
function header(path, kind, size, mode) {
  const block = new Uint8Array(512);
  const { name, prefix } = splitName(path);
  put(block, 0, 100, name);
  octal(block, 100, 8, mode);
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, size);
  octal(block, 136, 12, 0); // mtime
  block.fill(0x20, 148, 156); // the checksum counts as spaces while it is computed
  put(block, 156, 1, kind);
  put(block, 257, 6, "ustar\0");
  put(block, 263, 2, "00");
  put(block, 265, 32, "root");
  put(block, 297, 32, "root");
  put(block, 345, 155, prefix);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

/**
 * The files of an `<input type=file>` as `{path, file}`: for a folder picked with
 * `webkitdirectory`, paths relative to that folder (its own name dropped, as the CLI packs a
 * directory's contents); for single files, their names.
 */
export function sourceEntries(fileList) {
  const files = Array.from(fileList || []);
  const entries = files.map((file) => {
    const relative = file.webkitRelativePath || "";
    const path = relative.includes("/") ? relative.slice(relative.indexOf("/") + 1) : file.name;
    return { path, file };
  });
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return entries;
}

/**
 * A ustar archive (a Blob) of `entries` (`{path, file}`, a `file` being a Blob): each file's
 * parent directories first (mode 755), files mode 644, then the two zero blocks.
 */
export function tarBlob(entries) {
  if (entries.length === 0) throw new Error("No file is chosen: pick a file or a folder holding the code.");
  const parts = [];
  const dirs = new Set();
  let bytes = 0;
  let count = 0;
  for (const { path, file } of entries) {
    if (!path || path.startsWith("/") || path.split("/").some((p) => p === ".." || p === "")) {
      throw new Error(`"${path}" is not a relative path of a file; pick the files again`);
    }
    const segments = path.split("/");
    for (let i = 1; i < segments.length; i += 1) {
      const dir = segments.slice(0, i).join("/") + "/";
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      count += 1;
      parts.push(header(dir, "5", 0, 0o755));
    }
    count += 1;
    bytes += file.size;
    if (count > MAX_SOURCE_ENTRIES) {
      throw new Error(`The source has more than ${MAX_SOURCE_ENTRIES} files and folders: send only the code, and install dependencies with an image build.`);
    }
    if (bytes > MAX_SOURCE_BYTES) {
      throw new Error(`The source is over 64 MiB (at ${path}): send only the code, and install dependencies with an image build.`);
    }
    parts.push(header(path, "0", file.size, 0o644));
    parts.push(file);
    const pad = (512 - (file.size % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024));
  return new Blob(parts, { type: "application/x-tar" });
}

/** `blob` gzipped with the browser's own CompressionStream. */
export async function gzip(blob) {
  if (typeof CompressionStream !== "function") {
    throw new Error("This browser has no CompressionStream (gzip): use a current Chromium, Firefox or Safari, or `faasbox fn create`.");
  }
  const stream = blob.stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).blob();
}

/** The base64 text of `blob` (read as a data: URL, whose tail it is). */
export function base64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(",") + 1));
    };
    reader.onerror = () => reject(reader.error || new Error("the archive could not be read"));
    reader.readAsDataURL(blob);
  });
}

/**
 * The `source` of a function from code: the picked files as base64 of a tar.gz, with what
 * went in: `{source, files, bytes, gzipped}`.
 */
export async function packSource(fileList) {
  const entries = sourceEntries(fileList);
  const tar = tarBlob(entries);
  const gz = await gzip(tar);
  return {
    source: await base64(gz),
    files: entries.map((e) => e.path),
    bytes: entries.reduce((n, e) => n + e.file.size, 0),
    gzipped: gz.size,
  };
}
