// The console works without script; this only keeps a running test's button from a double submit.
for (const form of document.querySelectorAll("form[method=post]")) {
  form.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (button instanceof HTMLButtonElement) {
      // Disabled after the browser has read its name/value into the submission.
      setTimeout(() => { button.disabled = true; button.textContent = "Working…"; }, 0);
    }
  });
}
