// format.js: how times, durations, sizes and JSON are shown.

/** Local date and time of an RFC 3339 timestamp ("" for none). */
export function when(rfc3339) {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return String(rfc3339);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "5 s ago", "3 min ago", "2 h ago", "4 d ago" ("in …" for the future). */
export function ago(rfc3339) {
  if (!rfc3339) return "";
  const t = new Date(rfc3339).getTime();
  if (Number.isNaN(t)) return String(rfc3339);
  let s = Math.round((Date.now() - t) / 1000);
  const future = s < 0;
  s = Math.abs(s);
  let text;
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
  else text = `${Math.floor(s / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

/** "850 ms", "1.25 s", "2 min 5 s", "1 h 3 min" ("" for none). */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return "";
  ms = Number(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Pretty JSON text (2 spaces); strings that are not JSON values are shown as they are. */
export function json(value) {
  if (value === undefined) return "";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** "512 B", "1.5 KiB", "20.0 MiB", "1.2 GiB". */
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return "";
  n = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}
