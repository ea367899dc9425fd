// Crossdoc: what every page shares. Our own code, no libraries; loaded with `defer`.
// Everything user-supplied is put into the page with textContent, never as HTML.
"use strict";

const Crossdoc = (() => {
  const messagesElement = document.getElementById("messages");
  const messages = messagesElement ? JSON.parse(messagesElement.textContent) : {};

  function t(key, values) {
    let text = messages[key] || key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    const fromCookie = document.cookie.split("; ").find((c) => c.startsWith("crossdoc_csrf="));
    return fromCookie ? fromCookie.slice("crossdoc_csrf=".length) : meta ? meta.content : "";
  }

  // One refresh at a time: a refresh token works once, so two concurrent refreshes
  // would look like a stolen token and end the session.
  let refreshing = null;
  function refreshSession() {
    if (!refreshing) {
      refreshing = fetch("/session/refresh", {
        method: "POST",
        headers: { "X-CSRF-Token": csrfToken() },
        credentials: "same-origin",
      }).finally(() => { setTimeout(() => { refreshing = null; }, 1000); });
    }
    return refreshing;
  }

  // fetch() for our API with the session cookie and CSRF header; refreshes an expired
  // session once, and sends the user to the sign-in page when it cannot.
  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin" }, options || {});
    opts.headers = Object.assign({ "X-CSRF-Token": csrfToken() }, opts.headers || {});
    let response = await fetch(path, opts);
    if (response.status === 401) {
      const refreshed = await refreshSession();
      if (refreshed.ok) {
        opts.headers["X-CSRF-Token"] = csrfToken();
        response = await fetch(path, opts);
      }
      if (response.status === 401) {
        window.location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
      }
    }
    return response;
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (e) { /* not JSON */ }
    return response.status + " " + response.statusText;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  document.documentElement.classList.add("js");
  // Selects that apply at once (sort order); their form's button is for keyboards without JS.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  return { t, api, csrfToken, errorMessage, el };
})();
