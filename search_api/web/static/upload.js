// Upload: several files at once (drag and drop or the file chooser), a progress bar per
// file, then each document's indexing status, polled until `indexed` or `failed`.
"use strict";

(() => {
  const { t, api, csrfToken, el } = Crossdoc;
  const form = document.getElementById("upload-form");
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const queue = document.getElementById("queue");
  const empty = document.getElementById("queue-empty");
  const start = document.getElementById("upload-start");
  const maxBytes = Number(form.dataset.maxBytes);
  let waiting = [];

  function sizeText(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function reasonText(detail) {
    const code = (detail || "").split(":")[0];
    const known = ["encrypted", "unsupported_format", "empty", "parse_error", "limit_exceeded"];
    return known.includes(code) ? t("js.reason." + code) : detail || t("js.reason.unknown");
  }

  function addFiles(files) {
    for (const file of files) {
      const progress = el("progress", { max: 100, value: 0, "aria-label": t("js.upload.progress_of", { name: file.name }) });
      const status = el("span", { class: "file-status", role: "status", text: t("js.upload.ready") });
      const link = el("span", { class: "file-link" });
      const row = el("li", { class: "queue-item" },
        el("div", { class: "file-line" }, el("strong", { class: "file-name", text: file.name }), el("span", { class: "muted small", text: sizeText(file.size) })),
        progress,
        el("div", { class: "file-line" }, status, link));
      queue.append(row);
      const item = { file, row, progress, status, link };
      if (file.size > maxBytes) {
        fail(item, t("js.upload.too_large"));
        continue;
      }
      waiting.push(item);
    }
    empty.hidden = queue.children.length > 0;
    start.disabled = waiting.length === 0;
  }

  function fail(item, message) {
    item.row.classList.add("failed");
    item.status.textContent = message;
  }

  function send(item) {
    return new Promise((resolve) => {
      const data = new FormData();
      data.append("file", item.file, item.file.name);
      data.append("visibility", form.visibility.value);
      if (form.tags.value.trim()) data.append("tags", form.tags.value.trim());
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/documents");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        item.progress.value = Math.round((event.loaded / event.total) * 100);
        item.status.textContent = t("js.upload.sending", { percent: item.progress.value });
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 200 && xhr.response && xhr.response.duplicate_of) {
          // The department already holds these bytes: that document answers.
          item.progress.value = 100;
          item.row.classList.add("indexed");
          item.status.textContent = t("js.upload.duplicate");
          item.link.replaceChildren(el("a", { href: "/documents/" + xhr.response.id, text: t("js.upload.open") }));
        } else if (xhr.status === 202 && xhr.response) {
          item.progress.value = 100;
          item.status.textContent = t("js.status.pending");
          item.link.replaceChildren(el("a", { href: "/documents/" + xhr.response.id, text: t("js.upload.open") }));
          watch(item, xhr.response.id);
        } else {
          const message = xhr.response && xhr.response.error ? xhr.response.error.message : xhr.status + " " + xhr.statusText;
          fail(item, t("js.upload.failed", { reason: message }));
        }
        resolve();
      });
      xhr.addEventListener("error", () => { fail(item, t("js.network_error")); resolve(); });
      xhr.send(data);
    });
  }

  // The indexing status, until it is final.
  async function watch(item, id) {
    for (let attempt = 0; attempt < 600; attempt++) {
      await new Promise((r) => setTimeout(r, attempt < 10 ? 500 : 2000));
      const response = await api("/api/v1/documents/" + id);
      if (!response.ok) continue;
      const doc = await response.json();
      if (doc.status === "indexed" && doc.has_text === false) {
        // Stored and found by name: not a failure, but say why there is no text.
        item.row.classList.add("indexed");
        item.status.textContent = t("js.status.no_text", { reason: reasonText(doc.status_detail) });
        return;
      }
      if (doc.status === "indexed") {
        item.row.classList.add("indexed");
        item.status.textContent = t("js.status.indexed");
        return;
      }
      if (doc.status === "failed") {
        item.row.classList.add("failed");
        item.status.textContent = t("js.status.failed", { reason: reasonText(doc.status_detail) });
        return;
      }
    }
  }

  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const batch = waiting;
    waiting = [];
    start.disabled = true;
    // The session may have expired while the files were chosen: renew it first.
    await api("/api/v1/me");
    // Two at a time: each gets bandwidth, and the progress bars move visibly.
    const running = [];
    for (const item of batch) {
      const job = send(item).then(() => running.splice(running.indexOf(job), 1));
      running.push(job);
      if (running.length >= 2) await Promise.race(running);
    }
    await Promise.all(running);
  });
})();
