// Progressive enhancement for the server-rendered pages: every form works without this file.

document.documentElement.classList.add("js");

// The lab switcher submits on change; its button stays for browsers without JS.
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

// Destructive forms ask first (remove a member, revoke a token).
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

// Copy buttons: <button data-copy-target="element-id">.
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP pages (a lab server on the LAN) have no Clipboard API.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

for (const button of document.querySelectorAll("button[data-copy-target]")) {
  const target = document.getElementById(button.dataset.copyTarget);
  const status = button.parentElement.querySelector(".copy-status");
  if (!target) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await copyText(target.textContent.trim());
      if (status) status.textContent = "Copied to the clipboard.";
    } catch {
      if (status) status.textContent = "Copy failed: select the token and copy it by hand.";
    }
  });
}
