/* isseimail web UI: character counters, confirmations, live progress. Loaded as a file (the CSP forbids inline script). */
(function () {
  "use strict";

  /* Count like the server: Unicode code points after NFC normalisation; a CRLF (or CR) is one line break. */
  function countChars(text) {
    return Array.from(text.replace(/\r\n?/g, "\n").normalize("NFC")).length;
  }
  window.isseimailCountChars = countChars;

  function setupCounters() {
    document.querySelectorAll("[data-count-max]").forEach(function (input) {
      var counter = document.getElementById(input.id + "-count");
      if (!counter) { return; }
      var max = parseInt(input.getAttribute("data-count-max"), 10);
      var n = counter.querySelector(".counter__n");
      function update() {
        var count = countChars(input.value);
        n.textContent = String(count);
        counter.classList.toggle("is-over", count > max);
      }
      input.addEventListener("input", update);
      update();
    });
  }

  function setupAttachmentTotal() {
    var total = document.querySelector("[data-size-total]");
    if (!total) { return; }
    var group = total.getAttribute("data-size-total");
    var max = parseInt(total.getAttribute("data-size-max"), 10);
    var inputs = document.querySelectorAll('input[data-size-group="' + group + '"]');
    function update() {
      var sum = 0;
      inputs.forEach(function (input) {
        Array.prototype.forEach.call(input.files || [], function (f) { sum += f.size; });
      });
      total.querySelector(".counter__n").textContent = sum.toLocaleString("ja-JP");
      total.classList.toggle("is-over", sum > max);
    }
    inputs.forEach(function (input) { input.addEventListener("change", update); });
    update();
  }

  function setupConfirmations() {
    document.querySelectorAll("[data-confirm]").forEach(function (el) {
      el.addEventListener("click", function (event) {
        if (!window.confirm(el.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  function focusErrors() {
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  }

  /* A field's server error goes away once the user changes that field (its summary line with it): what is
     still listed is what is still wrong. The server checks everything again on the next submit. */
  function setupErrorClearing() {
    document.querySelectorAll(".field--error").forEach(function (field) {
      function clear() {
        field.classList.remove("field--error");
        field.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
        var message = field.querySelector(".error");
        if (message) {
          message.textContent = "";
          var line = document.querySelector('#error-summary [data-error-for="' + message.id.replace(/-error$/, "") + '"]');
          if (line) { line.remove(); }
        }
        field.removeEventListener("input", clear);
        field.removeEventListener("change", clear);
      }
      field.addEventListener("input", clear);
      field.addEventListener("change", clear);
    });
  }

  /* "約N分": the dispatcher's estimate (seconds) as people read it. */
  function formatDuration(seconds) {
    if (seconds < 60) { return "1分以内"; }
    var minutes = Math.ceil(seconds / 60);
    if (minutes < 60) { return "約" + minutes + "分"; }
    var hours = Math.floor(minutes / 60), rest = minutes % 60;
    return "約" + hours + "時間" + (rest ? rest + "分" : "");
  }

  function setupEstimate() {
    var box = document.querySelector("[data-campaign-estimate]");
    if (!box) { return; }
    var tries = 0;
    poll(box.getAttribute("data-campaign-estimate"), 1000, function (res) {
      tries += 1;
      if (res.status !== 200) {
        // 404 until the dispatcher has taken the campaign in; give up quietly after a minute
        if (tries >= 60 || res.status === 401 || res.status === 403) { setField(box, "estimate", "-"); return false; }
        return true;
      }
      var d = res.body;
      setField(box, "estimate", formatDuration(d.seconds));
      var detail = "（送信先 " + d.recipients.toLocaleString("ja-JP") + " 件・" + d.domains + " ドメイン";
      if (d.slowest) {
        detail += "。最も時間のかかる " + d.slowest.domain + " へは " + d.slowest.recipients.toLocaleString("ja-JP") +
          " 件を毎分 " + Math.round(d.slowest.per_minute).toLocaleString("ja-JP") + " 件のペースで送信";
      }
      setField(box, "estimate_detail", detail + "）");
      return false;
    });
  }

  function poll(url, interval, onData) {
    var stopped = false;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
        .then(function (res) {
          if (onData(res) === false) { stopped = true; }
        })
        .catch(function () { /* a missed poll is retried on the next tick */ })
        .then(function () { if (!stopped) { window.setTimeout(tick, interval); } });
    }
    tick();
  }

  function num(data, key) {
    var source = (data && typeof data.counts === "object" && data.counts) ? data.counts : data;
    var v = source ? source[key] : undefined;
    return typeof v === "number" ? v : 0;
  }

  function setField(root, name, value) {
    root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = value; });
  }

  function setupListProgress() {
    var box = document.querySelector("[data-list-progress]");
    if (!box) { return; }
    var bar = box.querySelector("progress");
    poll(box.getAttribute("data-list-progress"), 700, function (res) {
      if (res.status !== 200) { window.location.assign(box.getAttribute("data-done-url")); return false; }
      var rows = num(res.body, "rows"), checked = num(res.body, "checked");
      bar.max = Math.max(rows, 1);
      bar.value = checked;
      setField(box, "rows", String(rows));
      setField(box, "checked", String(checked));
      if (res.body.status && res.body.status !== "validating") {
        window.location.assign(box.getAttribute("data-done-url"));
        return false;
      }
      return true;
    });
  }

  var STATUS_LABELS = { draft: "作成中", accepted: "受付済み", dispatching: "送信中", paused: "一時停止", completed: "送信完了" };

  function formatTime(date) {
    return date.toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit" });
  }

  function setupCampaignProgress() {
    var box = document.querySelector("[data-campaign-progress]");
    if (!box) { return; }
    var bar = box.querySelector("progress");
    var first = null;
    poll(box.getAttribute("data-campaign-progress"), 1000, function (res) {
      if (res.status !== 200) {
        // 401/403 carry the API's Japanese reason; anything else gets a plain message of our own.
        var known = (res.status === 401 || res.status === 403) && res.body && typeof res.body.detail === "string";
        setField(box, "note", known ? res.body.detail : "送信状況を取得できませんでした。送信完了のお知らせメールでご確認ください。");
        return res.status >= 500;
      }
      var d = res.body;
      var total = num(d, "total"), sent = num(d, "sent"), failed = num(d, "failed"), retrying = num(d, "retrying");
      var done = sent + failed;
      var remaining = Math.max(total - done, 0);
      bar.max = Math.max(total, 1);
      bar.value = done;
      setField(box, "total", String(total));
      setField(box, "done", String(done));
      setField(box, "sent", String(sent));
      setField(box, "failed", String(failed));
      setField(box, "retrying", String(retrying));
      setField(box, "delayed", String(num(d, "delayed")));
      setField(box, "remaining", String(remaining));
      var badge = box.querySelector('[data-field="status_label"]');
      badge.textContent = STATUS_LABELS[d.status] || String(d.status || "");
      badge.className = "badge is-" + String(d.status || "");
      var now = Date.now();
      if (d.status === "completed") {
        setField(box, "eta", "完了");
        setField(box, "note", "送信処理が完了しました。送信者メールアドレスに送信完了のお知らせが届きます。");
        return false;
      }
      if (first === null || done < first.done) { first = { t: now, done: done }; }
      var rate = (done - first.done) / Math.max((now - first.t) / 1000, 0.001);
      setField(box, "eta", rate > 0 && remaining > 0 ? formatTime(new Date(now + remaining / rate * 1000)) + " 頃" : "計算中");
      if (d.status === "paused") {
        setField(box, "note", "送信失敗が多いため、送信を一時停止しました。送信者メールアドレスにお知らせをお送りしています。");
      }
      return true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCounters();
    setupAttachmentTotal();
    setupConfirmations();
    focusErrors();
    setupErrorClearing();
    setupListProgress();
    setupCampaignProgress();
    setupEstimate();
  });
})();
