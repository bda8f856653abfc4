// Upload panel for the file browser: drag-and-drop or file picker, uploads each file through the
// resumable upload API in parts (so a network hiccup resumes instead of restarting), with a
// progress bar. No inline script: the page's CSP allows only this file.
'use strict';
(function () {
  const PART = 8 * 1024 * 1024; // bytes per PUT: big enough for throughput, small enough to retry
  const MAX_RETRIES = 6;

  const root = document.getElementById('files');
  if (!root) return;
  const dir = root.dataset.path || '/';
  const csrf = root.dataset.csrf || '';
  const input = document.getElementById('file-input');
  const zone = document.getElementById('dropzone');
  const bar = document.getElementById('upload-progress');
  const pct = document.getElementById('upload-percent');
  const status = document.getElementById('upload-status');

  // Delegated, so rows re-rendered after an upload keep their confirmation.
  document.addEventListener('submit', function (e) {
    const f = e.target;
    if (f instanceof HTMLFormElement && f.classList.contains('confirm') &&
        !window.confirm(f.dataset.confirm || 'Are you sure?')) e.preventDefault();
  });
  if (!input || !zone) return;

  function setProgress(done, total) {
    const p = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    bar.value = p;
    pct.textContent = p + '%';
  }
  function say(text, cls) {
    status.textContent = text;
    status.className = cls || '';
  }
  function problem(xhrOrResp, text) {
    try { const j = JSON.parse(text); if (j && j.detail) return j.detail; } catch (_) { /* not JSON */ }
    return 'HTTP ' + xhrOrResp.status;
  }
  async function api(method, url, body) {
    const r = await fetch(url, {
      method: method,
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(problem(r, text));
    return text ? JSON.parse(text) : null;
  }
  function putPart(id, offset, blob, onProgress) {
    return new Promise(function (resolve, reject) {
      const x = new XMLHttpRequest();
      x.open('PUT', '/api/v1/uploads/' + encodeURIComponent(id) + '?offset=' + offset);
      x.setRequestHeader('Content-Type', 'application/octet-stream');
      x.setRequestHeader('X-CSRF-Token', csrf);
      x.upload.onprogress = function (e) { onProgress(e.loaded); };
      x.onload = function () {
        if (x.status >= 200 && x.status < 300) resolve(JSON.parse(x.responseText));
        else { const err = new Error(problem(x, x.responseText)); err.status = x.status; reject(err); }
      };
      x.onerror = function () { const err = new Error('network error'); err.status = 0; reject(err); };
      x.send(blob);
    });
  }
  const sleep = function (ms) { return new Promise(function (r) { setTimeout(r, ms); }); };

  async function uploadOne(file, doneBefore, grandTotal) {
    const path = (dir.endsWith('/') ? dir : dir + '/') + file.name;
    const up = await api('POST', '/api/v1/uploads', { path: path, resume: false });
    let offset = up.offset;
    let retries = 0;
    while (offset < file.size) {
      const end = Math.min(file.size, offset + PART);
      try {
        const st = await putPart(up.id, offset, file.slice(offset, end), function (loaded) {
          setProgress(doneBefore + offset + loaded, grandTotal);
        });
        offset = st.offset;
        retries = 0;
      } catch (e) {
        if (e.status >= 400 && e.status < 500 && e.status !== 409) throw e;
        if (++retries > MAX_RETRIES) throw e;
        say('Connection trouble, resuming ' + file.name + '…');
        await sleep(500 * retries);
        const st = await api('GET', '/api/v1/uploads/' + encodeURIComponent(up.id));
        offset = st.offset;
      }
      setProgress(doneBefore + offset, grandTotal);
    }
    return api('POST', '/api/v1/uploads/' + encodeURIComponent(up.id) + '/commit', { size: file.size });
  }

  async function uploadAll(files) {
    if (!files.length) return;
    const total = files.reduce(function (s, f) { return s + f.size; }, 0);
    let done = 0;
    setProgress(0, total);
    zone.classList.add('busy');
    try {
      for (const f of files) {
        say('Uploading ' + f.name + '…');
        await uploadOne(f, done, total);
        done += f.size;
        setProgress(done, total);
      }
      setProgress(total, total);
      say('Upload complete: ' + files.map(function (f) { return f.name; }).join(', ') + '.', 'ok');
      refreshList();
    } catch (e) {
      say('Upload failed: ' + e.message, 'error');
    } finally {
      zone.classList.remove('busy');
    }
  }

  // Re-renders the file table from the server's own page (parsed inertly: DOMParser runs no script),
  // so the new files appear with their actions without reloading and losing the status line.
  async function refreshList() {
    try {
      const r = await fetch(window.location.href, { credentials: 'same-origin' });
      if (!r.ok) return;
      const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      const fresh = doc.querySelector('#file-list tbody');
      const current = document.querySelector('#file-list tbody');
      if (fresh && current) current.replaceWith(document.importNode(fresh, true));
    } catch (_) { /* the list stays as it was; a reload shows the new files */ }
  }

  input.addEventListener('change', function () { uploadAll(Array.from(input.files)); });
  ['dragenter', 'dragover'].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add('over'); });
  });
  ['dragleave', 'drop'].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove('over'); });
  });
  zone.addEventListener('drop', function (e) { uploadAll(Array.from(e.dataTransfer.files)); });
})();
