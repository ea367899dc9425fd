// The search page. The results are rendered by the server (the URL holds the query and
// filters, so a result list can be shared); this only adds conveniences.
"use strict";

(() => {
  const box = document.getElementById("q");
  if (!box) return;
  // Hook for query suggestions (GET /api/v1/suggest?q=) once the server offers them:
  // the box names the endpoint; nothing is asked while it is absent.
  const suggestUrl = box.dataset.suggestUrl;
  let available = null;
  const list = Crossdoc.el("datalist", { id: "q-suggestions" });
  box.after(list);
  box.setAttribute("list", "q-suggestions");
  let timer = null;
  box.addEventListener("input", () => {
    clearTimeout(timer);
    const text = box.value.trim();
    if (!suggestUrl || available === false || text.length < 2) return;
    timer = setTimeout(async () => {
      const response = await Crossdoc.api(suggestUrl + "?q=" + encodeURIComponent(text));
      if (response.status === 404) { available = false; return; }
      if (!response.ok) return;
      available = true;
      const body = await response.json();
      const items = Array.isArray(body) ? body : (body.suggestions || []);
      list.replaceChildren(...items.slice(0, 8).map((s) =>
        Crossdoc.el("option", { value: typeof s === "string" ? s : (s.text || s.value || "") })));
    }, 200);
  });
})();
