// Placeholder until this page lands: signs in, then says what it will show.
import { requireKey } from "./session.js";
import { el } from "./api.js";

const app = document.getElementById("app");
requireKey(app, {
  roles: ["auditor"],
  purpose: "Sign in to see this page.",
  onSignedIn: () => app.replaceChildren(el("p", {}, "Signed in.")),
});
