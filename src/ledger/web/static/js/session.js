// The API key a page uses: typed in by its user, kept in this tab's
// sessionStorage (gone when the tab closes), sent only in the Authorization
// header, never put in a URL, a cookie or localStorage.

const STORAGE = "ledger.api-key";
const WHO = "ledger.api-key.who";

export function currentKey() {
  return sessionStorage.getItem(STORAGE);
}

export function currentPrincipal() {
  const text = sessionStorage.getItem(WHO);
  return text ? JSON.parse(text) : null;
}

export function signOut() {
  sessionStorage.removeItem(STORAGE);
  sessionStorage.removeItem(WHO);
}

async function identify(key) {
  const response = await fetch("/me", {
    headers: { Accept: "application/json", Authorization: `Bearer ${key}` },
    credentials: "omit",
  });
  if (response.status === 401) throw new Error("The server does not know this key (or it was revoked).");
  if (!response.ok) throw new Error(`The server answered ${response.status} to /me.`);
  return response.json();
}

function text(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = content;
  return node;
}

function showStatus(principal, onSignOut) {
  const status = document.getElementById("session-status");
  if (!status) return;
  status.replaceChildren();
  if (!principal) return;
  const who = principal.subject ? `${principal.role} ${principal.subject}` : principal.role;
  status.append(text("span", "who", `Signed in as ${who}`));
  const button = text("button", "link-button", "Sign out");
  button.type = "button";
  button.addEventListener("click", () => {
    signOut();
    status.replaceChildren();
    onSignOut?.();
  });
  status.append(" ", button);
}

/**
 * Ask for a key with one of ``roles`` (admin always passes), then call
 * ``onSignedIn(principal)``. Signed in already in this tab: at once.
 */
export function requireKey(container, { roles, purpose, onSignedIn }) {
  const render = () => {
    const known = currentPrincipal();
    if (known && currentKey() && (roles.includes(known.role) || known.role === "admin")) {
      showStatus(known, render);
      onSignedIn(known);
      return;
    }
    showStatus(null);
    container.replaceChildren(signInForm({ roles, purpose, onDone: render }));
  };
  render();
}

function article(word) {
  return `${/^[aeiou]/.test(word) ? "an" : "a"} ${word}`;
}

function signInForm({ roles, purpose, onDone }) {
  const form = document.createElement("form");
  form.className = "sign-in";
  form.setAttribute("aria-labelledby", "sign-in-title");
  form.append(text("h2", "", "Sign in"));
  form.lastChild.id = "sign-in-title";
  form.append(text("p", "", purpose));
  const label = text("label", "", `API key (${roles.join(" or ")})`);
  label.htmlFor = "api-key";
  const input = document.createElement("input");
  input.id = "api-key";
  input.name = "api-key";
  input.type = "password";
  input.autocomplete = "off";
  input.required = true;
  input.spellcheck = false;
  const hint = text(
    "p",
    "muted",
    "The key stays in this browser tab (sessionStorage) and is sent only in the Authorization header of API calls to this server.",
  );
  const button = text("button", "", "Sign in");
  button.type = "submit";
  const error = text("p", "problem-inline", "");
  error.setAttribute("role", "alert");
  form.append(label, input, hint, button, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const key = input.value.trim();
    try {
      const principal = await identify(key);
      if (!roles.includes(principal.role) && principal.role !== "admin") {
        throw new Error(
          `This page needs ${article(roles.join(" or "))} key; this one is ${article(principal.role)} key.`,
        );
      }
      sessionStorage.setItem(STORAGE, key);
      sessionStorage.setItem(WHO, JSON.stringify(principal));
      input.value = "";
      onDone();
    } catch (failure) {
      error.textContent = failure.message;
      input.focus();
    }
  });
  queueMicrotask(() => input.focus());
  return form;
}
