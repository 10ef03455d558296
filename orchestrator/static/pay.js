// The console's simulated checkout (pay.html): a script file, not inline, so the CSP can forbid inline scripts.
document.getElementById("pay").addEventListener("click", async (e) => {
  const out = document.getElementById("result");
  e.target.disabled = true;
  const r = await fetch("/console/api/pay", {method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({reference: e.target.dataset.reference})});
  const data = await r.json().catch(() => ({}));
  out.textContent = r.ok ? "Paid ✓ Charla will confirm in the chat." : "Payment failed: " + (data.error || data.detail || r.status);
  if (!r.ok) e.target.disabled = false;
});
