// Tourniquet console: decisions through the JSON API (with the session's CSRF token), live updates
// from the SSE feed, lazy details. Plain script, no build step; htmx handles filters and reloads.
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
  const pageId = document.body.dataset.page;

  /** Calls the JSON API as the signed-in user; resolves to the body, rejects with the API's message. */
  async function api(method, url, body) {
    const res = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error(json?.error?.message ?? `${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return json;
  }

  const announcer = document.getElementById('announcer');
  const toast = document.getElementById('toast');
  let toastTimer;
  function announce(text) {
    if (announcer) announcer.textContent = text;
    if (toast) {
      toast.textContent = text;
      toast.hidden = false;
      clearTimeout(toastTimer);
      toastTimer = setTimeout(() => {
        toast.hidden = true;
      }, 6000);
    }
  }

  function setResult(el, text, ok) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle('error', !ok);
    el.classList.toggle('ok', ok);
  }

  // ------------------------------------------------------------------ approvals

  async function decide(actionId, verb, comment, digest) {
    const url = `/v1/actions/${encodeURIComponent(actionId)}/${verb}`;
    if (verb === 'approve') return api('POST', url, { argsDigest: digest, ...(comment ? { comment } : {}) });
    return api('POST', url, { reason: comment });
  }

  function outcomeText(action) {
    if (action.status === 'proposed' && action.approvers.length)
      return `Approved by ${action.approvers.join(', ')}; a second person completes it.`;
    return `Done: ${action.status.replace('_', ' ')}.`;
  }

  document.addEventListener('submit', async (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.classList.contains('decide')) {
      ev.preventDefault();
      const verb = ev.submitter?.value ?? 'approve';
      const comment = form.elements.namedItem('comment')?.value.trim() ?? '';
      const result = form.querySelector('.result');
      if (verb === 'reject' && !comment) {
        setResult(result, 'A reason is required to reject: write it in the comment.', false);
        form.elements.namedItem('comment')?.focus();
        return;
      }
      setBusy(form, true);
      try {
        const r = await decide(form.dataset.actionId, verb, comment, form.dataset.digest);
        setResult(result, outcomeText(r.action), true);
        refreshCard(form.dataset.actionId, outcomeText(r.action));
      } catch (err) {
        setResult(result, `Refused: ${err.message}`, false);
      } finally {
        setBusy(form, false);
      }
    } else if (form.id === 'verdict-form') {
      ev.preventDefault();
      await submitVerdict(form);
    } else if (form.id === 'automation-form') {
      ev.preventDefault();
      const reason = form.elements.namedItem('reason').value.trim();
      const result = form.querySelector('.result');
      setBusy(form, true);
      try {
        await api('POST', `/v1/automation/${form.dataset.verb}`, { reason });
        setResult(result, form.dataset.verb === 'pause' ? 'Automation paused.' : 'Automation resumed.', true);
        await refreshSummary();
        reloadLive();
      } catch (err) {
        setResult(result, `Refused: ${err.message}`, false);
      } finally {
        setBusy(form, false);
      }
    }
  });

  function setBusy(form, busy) {
    for (const b of form.querySelectorAll('button')) b.disabled = busy;
    form.setAttribute('aria-busy', String(busy));
  }

  // Related approvals answered together: one request per action, each recorded on its own.
  async function bulk(verb) {
    const ids = [...document.querySelectorAll('#queue input.select:checked')].map((c) => c.value);
    const comment = document.getElementById('bulk-comment')?.value.trim() ?? '';
    const out = document.getElementById('bulk-result');
    if (!ids.length) return setResult(out, 'Select at least one action.', false);
    if (verb === 'reject' && !comment) return setResult(out, 'A reason is required to reject.', false);
    let ok = 0;
    const refused = [];
    for (const id of ids) {
      const form = document.querySelector(`form.decide[data-action-id="${CSS.escape(id)}"]`);
      try {
        await decide(id, verb, comment, form?.dataset.digest);
        ok += 1;
        refreshCard(id);
      } catch (err) {
        refused.push(`${id}: ${err.message}`);
      }
    }
    setResult(
      out,
      `${verb === 'approve' ? 'Approved' : 'Rejected'} ${ok} of ${ids.length}.${refused.length ? ` Refused: ${refused.join('; ')}` : ''}`,
      refused.length === 0,
    );
  }

  document.addEventListener('click', (ev) => {
    const t = ev.target;
    if (!(t instanceof HTMLElement)) return;
    if (t.id === 'bulk-approve') void bulk('approve');
    else if (t.id === 'bulk-reject') void bulk('reject');
    else if (t.classList.contains('select-group')) {
      for (const c of document.querySelectorAll(`.group[data-group="${CSS.escape(t.dataset.group)}"] input.select`))
        c.checked = true;
    } else if (t.id === 'verify-chain') void verifyChain(t);
  });

  // Lazy details: evidence and the explain narrative load when a card is opened.
  document.addEventListener(
    'toggle',
    async (ev) => {
      const d = ev.target;
      if (!(d instanceof HTMLDetailsElement) || !d.open || d.dataset.loaded) return;
      d.dataset.loaded = '1';
      const body = d.querySelector('.detail-body');
      const res = await fetch(d.dataset.detail, { credentials: 'same-origin' });
      body.innerHTML = res.ok ? await res.text() : '<p class="error">Could not load the details.</p>';
      body.removeAttribute('aria-busy');
    },
    true,
  );

  const cardTimers = new Map();
  /** Several events of one action within a moment make one refresh. */
  function scheduleCard(actionId, position) {
    clearTimeout(cardTimers.get(actionId));
    cardTimers.set(
      actionId,
      setTimeout(() => {
        cardTimers.delete(actionId);
        void refreshCard(actionId, undefined, position);
      }, 30),
    );
  }

  /** Re-renders one card from the server; removes it when the action left the queue. */
  async function refreshCard(actionId, note, position) {
    const queue = document.getElementById('queue');
    if (!queue) return;
    const after = position ? `?after=${position}` : '';
    const res = await fetch(`/console/actions/${encodeURIComponent(actionId)}/card${after}`, {
      credentials: 'same-origin',
    });
    const existing = document.getElementById(`action-${actionId}`);
    // read every body: an unread one is cancelled by the browser (a failed request in its log)
    const body = await res.text();
    const gone = res.headers.get('x-action-status');
    if (res.ok && gone) {
      if (existing) {
        announce(note ?? `Action ${actionId} is ${gone.replace('_', ' ')}.`);
        const group = existing.closest('.group');
        existing.remove();
        if (group && !group.querySelector('.approval')) group.remove();
        updateCount(-1);
      } else if (notYetLoaded.delete(actionId)) updateCount(-1);
    } else if (res.ok) {
      const tpl = document.createElement('template');
      tpl.innerHTML = body.trim();
      const card = tpl.content.firstElementChild;
      if (!card) return;
      if (existing) {
        // same facts: leave the card (and whatever the analyst is doing in it) alone
        // (for a pending action only its approvals change)
        const state = (el) => el.querySelector('.approval-state')?.innerHTML;
        if (state(existing) === state(card)) return;
        // keep what the analyst was typing
        const typed = existing.querySelector('input[name="comment"]')?.value;
        const result = existing.querySelector('.result')?.textContent;
        existing.replaceWith(card);
        if (typed) card.querySelector('input[name="comment"]').value = typed;
        if (result) card.querySelector('.result').textContent = result;
      } else if (!notYetLoaded.has(actionId)) {
        insertCard(queue, card);
        card.classList.add('new');
        updateCount(1);
        announce(`New approval: ${card.querySelector('h3')?.textContent ?? actionId}`);
      }
    }
  }

  function insertCard(queue, card) {
    document.getElementById('queue-empty')?.remove();
    const key = card.dataset.group;
    let group = [...queue.querySelectorAll('.group')].find((g) => g.dataset.group === key);
    if (!group) {
      group = document.createElement('section');
      group.className = 'group';
      group.dataset.group = key;
      const [rule, type, stage, mode] = key.split('|');
      group.setAttribute('aria-label', `${rule}: ${type}, stage ${stage}`);
      const h = document.createElement('h2');
      h.textContent = `${rule} → ${type} (stage ${stage}, ${mode})`;
      group.append(h);
      queue.prepend(group);
    }
    group.append(card);
  }

  let queueTotal = Number(document.getElementById('queue-count')?.textContent ?? 0);
  function updateCount(delta) {
    queueTotal = Math.max(0, queueTotal + delta);
    const c = document.getElementById('queue-count');
    if (c) c.textContent = String(queueTotal);
    const nav = document.getElementById('pending-count');
    if (nav) nav.textContent = String(queueTotal);
  }

  // The page comes with the first cards; the rest of a long queue follows once it has painted.
  const notYetLoaded = new Set(document.getElementById('queue-more')?.dataset.ids.split(' ') ?? []);
  async function loadRestOfQueue() {
    const more = document.getElementById('queue-more');
    const queue = document.getElementById('queue');
    if (!more || !queue) return;
    // all chunks requested at once (the browser keeps a few connections busy), placed in order
    const ids = [...notYetLoaded];
    const chunks = [];
    for (let i = 0; i < ids.length; i += 200) chunks.push(ids.slice(i, i + 200));
    const answers = chunks.map((chunk) =>
      fetch(`/console/queue/cards?ids=${chunk.map(encodeURIComponent).join(',')}`, { credentials: 'same-origin' }).then(
        async (res) => ({ ok: res.ok, body: await res.text() }),
      ),
    );
    for (const [i, answer] of answers.entries()) {
      const res = await answer;
      if (!res.ok) {
        more.textContent = 'The rest of the queue could not be loaded: reload the page.';
        more.classList.add('error');
        return;
      }
      const tpl = document.createElement('template');
      tpl.innerHTML = res.body;
      for (const card of [...tpl.content.querySelectorAll('.approval')])
        if (notYetLoaded.has(card.dataset.action) && !document.getElementById(card.id)) insertCard(queue, card);
      for (const id of chunks[i]) notYetLoaded.delete(id);
      more.textContent = notYetLoaded.size ? `Loading ${notYetLoaded.size} more…` : '';
    }
    more.remove();
    document.body.dataset.queueLoaded = 'all';
  }
  if (notYetLoaded.size) requestAnimationFrame(() => setTimeout(loadRestOfQueue, 0));
  else if (document.getElementById('queue')) document.body.dataset.queueLoaded = 'all';

  // ------------------------------------------------------------------ verdict

  async function submitVerdict(form) {
    const verdict = form.querySelector('input[name="verdict"]:checked')?.value;
    const comment = form.elements.namedItem('comment').value.trim();
    const plan = document.getElementById('rollback-plan');
    const button = document.getElementById('verdict-submit');
    const result = form.querySelector('.result');
    if (verdict === 'benign' && plan && plan.hidden) {
      // benign rolls back: show the plan and its residue, then ask again
      plan.hidden = false;
      button.textContent = 'Confirm benign verdict and roll back';
      form.dataset.confirming = '1';
      plan.setAttribute('tabindex', '-1');
      plan.focus();
      return;
    }
    setBusy(form, true);
    try {
      await api('POST', `/v1/cases/${encodeURIComponent(form.dataset.caseId)}/verdict`, {
        verdict,
        ...(comment ? { comment } : {}),
      });
      setResult(result, `Verdict recorded: ${verdict}.`, true);
      location.reload();
    } catch (err) {
      setResult(result, `Refused: ${err.message}`, false);
      setBusy(form, false);
    }
  }

  document.addEventListener('change', (ev) => {
    const t = ev.target;
    if (t instanceof HTMLInputElement && t.name === 'verdict') {
      const plan = document.getElementById('rollback-plan');
      const button = document.getElementById('verdict-submit');
      if (t.value === 'malicious' && plan) {
        plan.hidden = true;
        if (button) button.textContent = 'Record verdict';
      }
    }
  });

  // ------------------------------------------------------------------ audit

  async function verifyChain(button) {
    const out = document.getElementById('verify-result');
    button.disabled = true;
    setResult(out, 'Verifying…', true);
    try {
      const r = await api('GET', '/v1/audit/verify');
      setResult(
        out,
        r.ok
          ? `Chain intact: ${r.checked} events checked, head ${r.head ? `#${r.head.position}` : 'empty'}.`
          : `Chain BROKEN at #${r.firstBad.position}: ${r.firstBad.problem} (${r.firstBad.detail}).`,
        r.ok,
      );
    } catch (err) {
      setResult(out, `Refused: ${err.message}`, false);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ live updates

  async function refreshSummary(position) {
    const res = await fetch(`/console/summary${position ? `?after=${position}` : ''}`, { credentials: 'same-origin' });
    if (!res.ok) return;
    const s = await res.json();
    const banner = document.getElementById('paused-banner');
    if (banner) {
      banner.hidden = !s.automation.paused;
      const by = s.automation.by ? (s.automation.by.id ?? s.automation.by.ruleId) : 'unknown';
      banner.querySelector('[data-paused-detail]').textContent = s.automation.paused
        ? `by ${by}: ${s.automation.reason ?? ''}`
        : '';
    }
    if (!document.getElementById('queue')) {
      const nav = document.getElementById('pending-count');
      if (nav) nav.textContent = String(s.pending);
    }
  }

  let reloadTimer;
  let reloadAfter = 0;
  /** Re-renders the page's live region in place (case, cases, identity, automation pages). */
  function reloadLive(position) {
    const live = document.querySelector('[data-live]:not([data-live="queue"])');
    if (!live || !window.htmx) return;
    reloadAfter = Math.max(reloadAfter, position ?? 0);
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => {
      const params = new URLSearchParams(location.search);
      if (reloadAfter) params.set('after', String(reloadAfter));
      window.htmx.ajax('GET', `${location.pathname}?${params.toString()}`, {
        target: `#${live.id}`,
        select: `#${live.id}`,
        swap: 'outerHTML',
      });
    }, 50);
  }

  const ACTION_EVENTS = new Set([
    'ActionProposed',
    'ActionApproved',
    'ActionRejected',
    'ActionExpired',
    'ActionExecuted',
    'ActionVerified',
    'ActionFailed',
    'ActionRolledBack',
  ]);

  function onEvent(type, e) {
    window.tourniquetLastEvent = { type, position: e.position, at: performance.now() };
    if (type === 'AutomationPaused' || type === 'AutomationResumed') {
      void refreshSummary(e.position);
      if (pageId === 'automation') reloadLive(e.position);
      return;
    }
    if (ACTION_EVENTS.has(type)) {
      if (document.getElementById('queue')) scheduleCard(e.data.actionId, e.position);
      else void refreshSummary(e.position);
    }
    if (pageId === 'case' || pageId === 'cases' || pageId === 'identity') reloadLive(e.position);
  }

  if (pageId && pageId !== 'login' && 'EventSource' in window) {
    const types = [...ACTION_EVENTS, 'CaseOpened', 'CaseResolved', 'DetectionReceived', 'GuardTripped', 'AutomationPaused', 'AutomationResumed'];
    // from the position the page shows: nothing recorded between render and connect is missed
    const after = /^\d+$/.test(document.body.dataset.position ?? '') ? `&after=${document.body.dataset.position}` : '';
    const source = new EventSource(`/v1/stream?types=${types.join(',')}${after}`);
    for (const t of types)
      source.addEventListener(t, (m) => {
        try {
          onEvent(t, JSON.parse(m.data));
        } catch (err) {
          // a malformed message is skipped (and said so); the next reload shows the state anyway
          console.warn('live feed: skipped a message', err);
        }
      });
    source.addEventListener('open', () => {
      document.body.dataset.feed = 'connected';
    });
    // the page is going away: close the feed first so no request is left half-open
    window.addEventListener('pagehide', () => source.close());
  }
})();
