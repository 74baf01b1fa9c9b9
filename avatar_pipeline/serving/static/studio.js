// avatar studio: swatch colours, confirmations, and watching a generation request.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll(".swatch[data-hex]")) {
    el.style.backgroundColor = el.dataset.hex;
  }
  for (const button of document.querySelectorAll("button[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }
  const watch = document.getElementById("watch");
  if (watch) watchRequest(watch);
});

function watchRequest(panel) {
  const id = panel.dataset.request;
  const kit = panel.dataset.kit;
  const status = document.getElementById("watch-status");
  const progress = document.getElementById("watch-progress");
  const list = document.getElementById("watch-slots");
  const link = document.getElementById("watch-dagster");
  const message = document.getElementById("watch-message");
  let delay = 1000;

  async function poll() {
    let body;
    try {
      const response = await fetch(`/studio/requests/${id}.json`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`status ${response.status}`);
      body = await response.json();
    } catch (err) {
      status.textContent = `cannot read the run's status (${err.message}); retrying`;
      delay = Math.min(delay * 2, 10000);
      setTimeout(poll, delay);
      return;
    }
    status.textContent = body.status;
    status.className = `run ${body.status}`;
    panel.dataset.status = body.status;
    link.href = body.dagster_url;
    message.textContent = body.message || "";
    progress.max = Math.max(body.total_slots, 1);
    progress.value = body.done_slots;
    list.replaceChildren(
      ...body.slots.map((slot) => {
        const li = document.createElement("li");
        li.className = slot.state;
        li.dataset.slot = slot.slot;
        li.textContent = `${slot.label}: ${slot.words}`;
        return li;
      }),
    );
    if (body.finished) {
      // show the sheet as the run left it
      const done = body.status === "done" ? "run+finished" : "run+failed";
      window.location.replace(`/studio/kits/${kit}?message=${done}&finished=${id}`);
      return;
    }
    setTimeout(poll, delay);
  }
  poll();
}
