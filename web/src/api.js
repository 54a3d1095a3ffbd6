// Talks to the studio's REST API. Every request carries the bearer token when one is set:
// progress is streamed with fetch (not EventSource, which cannot send headers), downloads
// are fetched and handed to the browser as blobs, so the token never goes into a URL.

const TOKEN_KEY = "genesis-studio-token";

export function takeTokenFromFragment() {
  // A link such as http://host:8765/#token=... sets the token; fragments never reach servers.
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    setToken(decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function request(method, path, body) {
  const answer = await fetch(path, { method, body, headers: headers() });
  if (answer.status === 204) return null;
  const type = answer.headers.get("content-type") || "";
  const data = type.includes("json") ? await answer.json() : await answer.text();
  if (!answer.ok) throw new ApiError(answer.status, typeof data === "object" ? data : { message: data });
  return data;
}

export async function fetchBytes(url) {
  const answer = await fetch(url, { headers: headers() });
  if (!answer.ok) throw new ApiError(answer.status, { message: `download failed: HTTP ${answer.status}` });
  return answer.arrayBuffer();
}

export async function download(url, filename) {
  const bytes = await fetchBytes(url);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes]));
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/**
 * Follow a job's Server-Sent Events; onJob(job) on each change, resolves when the job ends.
 * Returns { done: Promise, abort() }.
 */
export function followJob(jobId, onJob) {
  const controller = new AbortController();
  const done = (async () => {
    const answer = await fetch(`/api/jobs/${jobId}/events`, {
      headers: headers({ Accept: "text/event-stream" }),
      signal: controller.signal,
    });
    if (!answer.ok) throw new ApiError(answer.status, { message: `progress stream: HTTP ${answer.status}` });
    const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (event === "job") onJob(JSON.parse(data.join("\n")));
        if (event === "end" || event === "deleted") {
          controller.abort();
          return;
        }
      }
    }
  })().catch((error) => {
    if (error.name !== "AbortError") throw error;
  });
  return { done, abort: () => controller.abort() };
}
