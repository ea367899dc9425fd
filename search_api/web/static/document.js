// The document page: a new version, and the sharing dialog (for those who manage it).
// Both call the API (the same permission checks), then reload the page.
"use strict";

(() => {
  const { t, api, errorMessage } = Crossdoc;
  const status = document.getElementById("doc-status");
  const id = status.dataset.id;

  // A pending document: reload when its indexing has finished.
  if (status.dataset.status === "pending") {
    const poll = setInterval(async () => {
      const response = await api("/api/v1/documents/" + id);
      if (response.ok && (await response.json()).status !== "pending") {
        clearInterval(poll);
        location.reload();
      }
    }, 1500);
  }

  const versionForm = document.getElementById("version-form");
  if (versionForm) {
    versionForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = document.getElementById("version-file").files[0];
      const message = document.getElementById("version-message");
      if (!file) return;
      const progress = document.getElementById("version-progress");
      progress.hidden = false;
      const data = new FormData();
      data.append("file", file, file.name);
      message.textContent = t("js.upload.sending", { percent: 0 });
      const response = await api("/api/v1/documents/" + id + "/content", { method: "PUT", body: data });
      progress.value = 100;
      if (response.ok) {
        location.reload();
      } else {
        message.textContent = t("js.upload.failed", { reason: await errorMessage(response) });
      }
    });
  }

  const dialog = document.getElementById("share");
  if (!dialog) return;
  const messageBox = document.getElementById("share-message");

  async function currentAcl() {
    const response = await api("/api/v1/documents/" + id + "/acl");
    if (!response.ok) throw new Error(await errorMessage(response));
    return response.json();
  }

  async function saveAcl(acl) {
    const response = await api("/api/v1/documents/" + id + "/acl", {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(acl),
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    location.reload();
  }

  document.getElementById("share-open").addEventListener("click", () => {
    messageBox.textContent = "";
    dialog.showModal();
  });
  document.getElementById("share-cancel").addEventListener("click", () => dialog.close());

  dialog.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-revoke]");
    if (!button) return;
    button.disabled = true;
    try {
      const acl = await currentAcl();
      acl.grants = acl.grants.filter((g) => g.principal !== button.dataset.revoke);
      await saveAcl(acl);
    } catch (error) {
      messageBox.textContent = t("js.share.failed", { reason: error.message });
      button.disabled = false;
    }
  });

  // The grantee field suggests from the directory (names and codes only), of the kind
  // chosen, as the user types: users too, whom the page does not list.
  const who = document.getElementById("grant-who");
  const kind = document.getElementById("grant-kind");
  const suggestions = document.getElementById("org-codes");
  let lookup = null;
  async function lookUp() {
    const params = new URLSearchParams({ q: who.value.trim(), kind: kind.value, size: "20" });
    try {
      const response = await api("/api/v1/directory?" + params.toString());
      if (!response.ok) return;
      const page = await response.json();
      suggestions.replaceChildren(...page.items.map((entry) => {
        const option = document.createElement("option");
        option.value = entry.code;
        option.textContent = entry.department ? entry.name + " · " + entry.department : entry.name;
        return option;
      }));
    } catch (error) { /* keep the suggestions there are */ }
  }
  who.addEventListener("input", () => {
    clearTimeout(lookup);
    lookup = setTimeout(lookUp, 250);
  });
  kind.addEventListener("change", lookUp);

  document.getElementById("share-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const who = document.getElementById("grant-who").value.trim();
    const kind = document.getElementById("grant-kind").value;
    const permission = document.getElementById("grant-permission").value;
    const expires = document.getElementById("grant-expires").value;
    try {
      const acl = await currentAcl();
      acl.visibility = document.getElementById("share-visibility").value;
      if (who) {
        const principal = kind + ":" + who;
        acl.grants = acl.grants.filter((g) => g.principal !== principal);
        // An expiry date means "until the end of that day" in Korea.
        acl.grants.push({ principal, permission, expires_at: expires ? expires + "T23:59:59+09:00" : null });
      }
      await saveAcl(acl);
    } catch (error) {
      messageBox.textContent = t("js.share.failed", { reason: error.message });
    }
  });
})();
