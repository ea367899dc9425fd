// Administration forms: each `form.api-form` is sent to the API as JSON (the same
// endpoints and checks as any API client), then the page reloads to show the result.
//   data-method, data-api: the call;  name="a.b": nested fields;  data-type="list":
//   checkboxes collected into a list;  data-type="bool";  data-type="end-of-day": a date
//   meaning the end of that day in Korea;  data-confirm: asked first.  Empty fields are left out.
//   data-show="password" | "was_locked": the answer is shown in the form (a one-time
//   password is shown once, never kept) instead of reloading the page.
"use strict";

(() => {
  const { t, api, errorMessage } = Crossdoc;

  function body(form) {
    const out = {};
    const put = (path, value) => {
      const keys = path.split(".");
      let node = out;
      for (const key of keys.slice(0, -1)) node = node[key] = node[key] || {};
      node[keys[keys.length - 1]] = value;
    };
    for (const field of form.elements) {
      if (!field.name || field.disabled) continue;
      const type = field.dataset.type;
      if (type === "list") {
        if (!(field.name in out)) put(field.name, []);
        if (field.checked) out[field.name].push(field.value);
        continue;
      }
      if (field.type === "checkbox" && !field.checked) continue;
      const value = field.value.trim();
      if (value === "") continue;
      if (type === "bool") put(field.name, value === "true");
      else if (type === "end-of-day") put(field.name, value + "T23:59:59+09:00");
      else put(field.name, value);
    }
    return out;
  }

  for (const form of document.querySelectorAll("form.api-form")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const message = form.querySelector(".form-message");
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
      const method = form.dataset.method;
      const options = { method };
      if (method !== "DELETE") {
        options.headers = { "Content-Type": "application/json" };
        options.body = JSON.stringify(body(form));
      }
      const buttons = form.querySelectorAll("button");
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const response = await api(form.dataset.api, options);
        if (response.ok && form.dataset.show) {
          const answer = await response.json();
          if (form.dataset.show === "password") {
            message.textContent = answer.password
              ? t("js.admin.one_time", { password: answer.password })
              : "";
          } else {
            message.textContent = t(answer.was_locked ? "js.admin.unlocked" : "js.admin.not_locked");
          }
          buttons.forEach((b) => { b.disabled = false; });
          return;
        }
        if (response.ok) {
          location.reload();
          return;
        }
        if (message) message.textContent = t("js.admin.failed", { reason: await errorMessage(response) });
      } catch (error) {
        if (message) message.textContent = t("js.network_error");
      }
      buttons.forEach((b) => { b.disabled = false; });
    });
  }
})();
