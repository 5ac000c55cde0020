// Placeholder until the explorer lands.
import { el } from "./api.js";

document.getElementById("app").replaceChildren(el("p", {}, "The explorer is being built."));
