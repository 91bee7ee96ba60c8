// stream.js: read a server-sent-events answer with fetch (so the CSRF header is sent; never
// EventSource), calling onEvent({event, data}) per event.

import { apiResponse } from "./api.js";

/**
 * Follows `/ui/api/v1{path}` until `signal` aborts or the stream ends. Resolves when it ends
 * (an abort resolves quietly); rejects with ApiError when the request fails.
 */
export async function followSse(path, onEvent, signal) {
  let response;
  try {
    response = await apiResponse("GET", path, { headers: { Accept: "text/event-stream" }, signal });
  } catch (error) {
    if (signal && signal.aborted) return;
    throw error;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data = [];
  const dispatch = () => {
    if (data.length) onEvent({ event, data: data.join("\n") });
    event = "message";
    data = [];
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          dispatch();
        } else if (line.startsWith(":")) {
          // a comment (keep-alive)
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") event = value;
          else if (field === "data") data.push(value);
        }
      }
    }
    dispatch();
  } catch (error) {
    if (signal && signal.aborted) return;
    throw error;
  } finally {
    try { reader.releaseLock(); } catch { /* already released */ }
  }
}
