"""What the Label tab shows and how it feels: the item as large text with optional word highlights, the page's
keyboard loop (``KEYBOARD_JS``), and a prefetcher that computes the highlights of the next items in the background,
so an answer moves on without waiting for the model.

The loop's contract between page and server:

- The server renders its view of the session into one hidden element (``served_html``): the current item and the
  items it has claimed after it, each a card with its id (``data-item-id``) and suggestion, plus a stamp per render
  and, for an answer, the ticket of the press it answers.
- The page owns the item box. It shows the server's current item, or — while answers are on their way — the card
  the server listed after it, so a key press moves on at once. Every press is queued with the id of the card on
  screen at that moment and sent one at a time; the server saves an answer only for the item it has current
  (``Shown``), and otherwise refuses it with a message. A refusal, a view the page did not predict, or a server
  that stops answering drops what is not sent yet, says so, and puts the server's item back on screen.

What the model says about an item (probabilities, highlights) is computed elsewhere; this module only draws it.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote

import numpy as np

from bertdemo.explain.attributions import attributions
from bertdemo.explain.tokens import word_spans
from bertdemo.inference.predict import get_predictor
from bertdemo.ui.page import esc

log = logging.getLogger(__name__)

KEYS_HELP = """**Keys** (when the cursor is not in a text box): **1–9** choose that label · **Enter** accepts the
model's suggestion · **S** skips · **U** or **Backspace** undoes your last change · **?** shows or hides this help.
Keys pressed quickly are saved in order, each for the text that was on screen when it was pressed.

**Multi-label projects** (a text may have several labels): **1–9** switch that label on or off for the text on
screen (or click it) · **0** clears the choice to *no label applies* · **Enter** saves the labels switched on, as
shown under the text. Before you switch any, the model's suggested labels are the ones on, so Enter accepts its
suggestion; switching a label changes that suggestion. Nothing is saved until Enter."""
HIGHLIGHT_STEPS = 24  # integrated-gradient points for the highlights: enough to rank words, quick to compute
CACHE_SIZE = 512  # highlights kept (per app), newest last
HIGHLIGHTS_NOTE = "(word highlights are being computed)"

LABEL_CSS = """
#label-alert:empty {display: none;}
#label-alert {margin-top: 6px; padding: 6px 10px; border-radius: 6px; background: #fef3c7; color: #78350f;
              border: 1px solid #f59e0b; font-weight: 600;}
#label-alert.bd-stalled {background: #fee2e2; color: #7f1d1d; border-color: #ef4444;}
html[data-bd-ahead] #label-info, html[data-bd-ahead] #label-probs {opacity: 0.45; transition: opacity .1s;}
.bd-toggles {display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px;}
.bd-toggle {cursor: pointer; user-select: none; padding: 4px 10px; border: 1px solid #9ca3af; border-radius: 999px;
            background: #fff; color: #111827;}
.bd-toggle small {color: #6b7280;}
.bd-toggle.bd-suggested {border: 2px dashed #2563eb;}
.bd-toggle.bd-on {background: #2563eb; border-color: #1d4ed8; color: #fff;}
.bd-toggle.bd-on small {color: #dbeafe;}
.bd-choice {margin-top: 6px; font-weight: 600;}
.bd-now {margin-top: 4px; color: #6b7280; font-size: 0.9em;}
"""

# The page's half of the loop (see the module docstring): one state machine, driven by key presses and clicks,
# by the server's renders of #label-served (a MutationObserver) and by one watchdog tick. Keys typed into a text
# field, or with a modifier held, are left alone; nothing happens unless the Label tab is on screen.
KEYBOARD_JS = """
() => {
  if (window.__bdLabel) return;
  const STALL_MS = 6000;  // an answer unanswered this long: the server is gone or stuck; say so, pause the keys
  const POLL_MS = 1500, POLLS = 40;  // the item on screen still waits for its highlights: ask again while idle
  const ADVANCES = new Set(['key', 'accept', 'set', 'skip', 'save']);  // actions after which the next card is current
  const BATCHED = new Set(['key', 'accept', 'skip', 'save']);  // sent together, in order, when several are queued
  const MAX_BATCH = 50;
  const BUTTONS = {'label-accept': 'accept', 'label-skip': 'skip', 'label-undo': 'undo', 'label-set': 'set',
                   'label-add': 'add'};
  const m = {served: null, lastView: null, queue: [], inflight: null, stalled: false, tickets: 0,
             polls: {id: null, n: 0, last: 0}, pressed: 0, sent: 0, replyMs: [],
             sel: {id: null, set: null}};  // multi-label: the labels switched on for the card on screen (null: none yet)
  window.__bdLabel = m;
  // what an answer event sends as "shown" (its js preprocessor calls this): the card's id and the press's ticket
  m.outgoing = () => m.inflight ? (m.inflight.item == null ? '' : String(m.inflight.item)) + '@' + m.inflight.ticket : '';
  // and, for a batch, every press in it: "12:k2,13:s,14:a"; a multi-label answer carries its whole set,
  // "15:m=" (saved as switched on) or "15:a=" (the suggestion accepted), then the set as URL-encoded JSON
  const setCode = (a) => '=' + encodeURIComponent(JSON.stringify(a.set));
  const code = (a) => a.kind === 'key' ? 'k' + a.key : a.kind === 'save' ? 'm' + setCode(a)
    : a.kind === 'accept' ? 'a' + (a.set ? setCode(a) : '') : 's';
  m.outgoingPresses = () => m.inflight && m.inflight.batch ? m.inflight.batch.map((a) => a.item + ':' + code(a)).join(',') : '';
  const unanswered = () => (m.inflight ? (m.inflight.batch || [m.inflight]) : []).concat(m.queue);

  const onTab = () => { const tab = document.getElementById('label-panel'); return tab && tab.offsetParent !== null; };
  const visible = (el) => el && el.offsetParent !== null;
  const buttonId = (a) => a.batch ? 'label-answers' : a.kind === 'refresh' ? 'label-refresh' : 'label-' + a.kind;
  const card = (el) => el && {id: Number(el.dataset.itemId), suggested: el.dataset.suggested || null,
                              pending: el.dataset.highlights === 'pending', html: el.outerHTML,
                              multi: el.dataset.multi === '1', now: el.dataset.now ? JSON.parse(el.dataset.now) : null};

  // Multi-label: what Enter would save for card c — the labels switched on, else the model's suggestion (null:
  // nothing to save yet). Exactly this is drawn under the text (paint) and sent with Enter.
  function chosen(c) {
    if (m.sel.id === c.id && m.sel.set) return {set: [...m.sel.set].sort(), how: 'save'};
    if (c.suggested !== null) return {set: JSON.parse(c.suggested), how: 'accept'};
    return null;
  }
  function toggle(c, k) {  // key k (0: no label applies) on card c: only the page's choice changes, nothing is sent
    const chip = document.querySelector('#label-screen .bd-toggle[data-k="' + k + '"]');
    if (k !== 0 && !chip) {
      const n = document.querySelectorAll('#label-screen .bd-toggle[data-label]').length;
      say('There is no label ' + k + ': this project has ' + n + '. Nothing changed.');
      return;
    }
    const was = chosen(c);
    const set = new Set(k === 0 ? [] : was ? was.set : (c.now || []));
    if (k !== 0) { const label = chip.dataset.label; if (set.has(label)) set.delete(label); else set.add(label); }
    m.sel = {id: c.id, set};
    render();
  }
  // Writes only what differs: the page's MutationObserver calls render (and so paint) on every change.
  function paint(screen, c) {
    const pick = chosen(c);
    const on = new Set(pick ? pick.set : []);
    const mark = (el, yes) => { if (el.classList.contains('bd-on') !== yes) el.classList.toggle('bd-on', yes); };
    screen.querySelectorAll('.bd-toggle[data-label]').forEach((chip) => mark(chip, on.has(chip.dataset.label)));
    const none = screen.querySelector('.bd-toggle[data-k="0"]');
    if (none) mark(none, !!pick && !pick.set.length);
    const line = screen.querySelector('.bd-choice');
    if (!line) return;
    const names = pick && (pick.set.length ? pick.set.join(' + ') : 'no label applies');
    const text = !pick ? 'Switch labels on with their keys (0: no label applies), then press Enter to save.'
      : pick.how === 'save' ? 'Enter saves: ' + names : 'Enter accepts the suggestion: ' + names;
    if (line.textContent !== text) line.textContent = text;
  }

  function say(text, kind) {
    const alert = document.getElementById('label-alert');
    if (!alert) return;
    alert.textContent = text || '';
    alert.classList.toggle('bd-stalled', kind === 'stall');
    m.saidAt = text ? performance.now() : 0;
  }
  const ALERT_MS = 5000;  // a message stays this long at least, however fast the keys come after it

  // What the item box shows: a pure function of the server's last view and the actions not yet answered.
  function target() {
    const s = m.served;
    if (!s) return null;
    const pending = unanswered();
    if (m.stalled) return s.current ? {card: s.current, stale: true} : {text: s.empty};
    if (pending.some((a) => a.kind === 'undo')) return {text: 'Undoing your last change…', ahead: true};
    const ahead = pending.filter((a) => ADVANCES.has(a.kind)).length;
    if (!ahead) return s.current ? {card: s.current} : {text: s.empty};
    const next = s.current ? [s.current, ...s.upcoming][ahead] : null;
    return next ? {card: next, ahead: true} : {text: 'The next item is on its way…', ahead: true};
  }

  function render() {
    const screen = document.getElementById('label-screen');
    if (!screen) return;
    const t = target();
    if (!t) return;
    const key = t.card ? t.card.html + (t.ahead ? '+ahead' : '') + (t.stale ? '+stale' : '') : 'text:' + t.text;
    if (screen.__bdKey !== key) {
      if (t.card) {
        screen.innerHTML = t.card.html;
        const text = screen.querySelector('.bd-item');
        text.id = 'label-item-text';
        if (t.ahead) text.classList.add('bd-pending');
      } else {
        screen.innerHTML = '<div class="bd-item" id="label-item-text"></div>';
        screen.firstChild.textContent = t.text;
      }
      screen.__bdKey = key;
    }
    if (t.card && t.card.multi) paint(screen, t.card);
    if (t.ahead || t.stale) document.documentElement.dataset.bdAhead = '1';
    else delete document.documentElement.dataset.bdAhead;
  }

  function drop(from, why) {  // the queued actions from index `from` on are not sent; say so
    const dropped = m.queue.splice(from).filter((a) => a.kind !== 'refresh').length;
    if (dropped) say(dropped + (dropped === 1 ? ' key press was' : ' key presses were') + ' not sent: ' + why
                     + '. Look at the item on screen and answer it again.');
  }

  function pump() {  // send the oldest queued action, if none is on its way
    while (!m.inflight && !m.stalled && m.queue.length) {
      let action = m.queue.shift();
      if (BATCHED.has(action.kind)) {  // it and the presses queued after it, up to the first of another kind
        const batch = [action];
        while (m.queue.length && BATCHED.has(m.queue[0].kind) && batch.length < MAX_BATCH) batch.push(m.queue.shift());
        action = {kind: 'batch', batch, item: batch[0].item, ticket: batch[batch.length - 1].ticket};
      }
      const button = document.getElementById(buttonId(action));
      if (!button || button.disabled) {
        if (action.kind !== 'refresh') say('Not sent: that button is not available now (' + buttonId(action) + ').');
        continue;
      }
      action.sentAt = performance.now();
      m.inflight = action;
      m.sent += action.batch ? action.batch.length : action.kind === 'refresh' ? 0 : 1;
      button.click();
    }
    render();
  }

  function press(kind, key) {
    if (m.stalled) {
      say('Not sent: the server has not answered your last answer yet, so keys are paused. If it does not answer '
          + 'soon, reload the page.', 'stall');
      return;
    }
    const t = target();
    const action = {kind, key, item: null, ticket: ++m.tickets};
    if (ADVANCES.has(kind)) {
      if (!t || !t.card) {
        say(t && t.text && !t.ahead ? 'Nothing to answer: ' + t.text : 'Not sent: wait a moment for the next item '
            + 'to show, then press again.');
        return;
      }
      if (t.card.multi && kind === 'key') { toggle(t.card, key); return; }
      if (t.card.multi && kind === 'accept') {
        const pick = chosen(t.card);
        if (!pick) {
          say('Nothing to save yet: switch labels on with their keys (0 if no label applies), then press Enter; S '
              + 'skips.');
          return;
        }
        action.kind = pick.how;
        action.set = pick.set;
        m.sel = {id: null, set: null};
      } else if (kind === 'key' && !visible(document.getElementById('label-key-' + key))) {
        const n = [...document.querySelectorAll('[id^=label-key-]')].filter(visible).length;
        say('There is no label ' + key + ': this project has ' + n + ' (keys 1–' + n + '). Not sent.');
        return;
      }
      if (kind === 'accept' && !t.card.multi && !t.card.suggested) {
        say('No suggestion to accept for this item: no model suggests labels in this queue. Press a number key, or '
            + 'S to skip.');
        return;
      }
      action.item = t.card.id;
    } else if (t && t.card) {
      action.item = t.card.id;
    }
    if (kind !== 'refresh') {
      m.pressed += 1;
      if (m.saidAt && performance.now() - m.saidAt > ALERT_MS) say('');
    }
    m.queue.push(action);
    pump();
  }

  function onView() {
    const root = document.querySelector('#label-served .bd-served');
    if (!root || root.dataset.view === m.lastView) { render(); return; }
    m.lastView = root.dataset.view;
    const empty = root.querySelector('.bd-empty');
    m.served = {ticket: root.dataset.ticket || '', outcome: root.dataset.outcome || '',
                current: card(root.querySelector(':scope > .bd-card')),
                upcoming: [...root.querySelectorAll('.bd-upcoming > .bd-card')].map(card),
                empty: empty ? empty.textContent : ''};
    const s = m.served;
    if (m.inflight && s.ticket === String(m.inflight.ticket)) {  // the reply to what was sent
      m.replyMs.push(performance.now() - m.inflight.sentAt);
      if (m.replyMs.length > 1000) m.replyMs.shift();
      m.inflight = null;
      if (m.stalled) { m.stalled = false; say('The server answered again: keys work again.'); }
      if (s.outcome === 'refused') drop(0, 'the server refused the answer before them (the message above says why)');
    } else if (!s.ticket) {  // the server's own move (Start, a finished ranking, bulk accept)
      drop(0, 'the queue changed');
    }
    // the cards the queued presses were made on must still be the ones the server will have current in turn
    const order = s.current ? [s.current, ...s.upcoming] : [];
    let at = m.inflight ? (m.inflight.batch || [m.inflight]).filter((a) => ADVANCES.has(a.kind)).length : 0;
    for (let i = 0; i < m.queue.length; i++) {
      const a = m.queue[i];
      if (!ADVANCES.has(a.kind)) continue;
      if (!order[at] || order[at].id !== a.item) { drop(i, 'the server moved on to another item than the one shown'); break; }
      at += 1;
    }
    pump();
  }

  document.addEventListener('keydown', (event) => {
    if (!onTab()) return;
    const el = event.target;
    if (el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable)) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    let kind = null, key = null;
    if (/^[1-9]$/.test(event.key)) { kind = 'key'; key = Number(event.key); }
    else if (event.key === '0' && document.querySelector('#label-screen .bd-card[data-multi="1"]')) { kind = 'key'; key = 0; }
    else if (event.key === 'Enter') kind = 'accept';
    else if (event.key === 's' || event.key === 'S') kind = 'skip';
    else if (event.key === 'u' || event.key === 'U' || event.key === 'Backspace') kind = 'undo';
    else if (event.key === '?' || event.key === 'h' || event.key === 'H') kind = 'help';
    if (kind === null) return;
    event.preventDefault();
    if (kind === 'help') { const b = document.getElementById('label-help-toggle'); if (visible(b)) b.click(); return; }
    press(kind, key);
  });
  // A click on an answer button is a press like a key: queued with the card on screen. The page's own clicks
  // (pump) are not trusted events and go through to gradio.
  document.addEventListener('click', (event) => {
    if (!event.isTrusted || !event.target.closest) return;
    const chip = event.target.closest('#label-screen .bd-toggle');  // a multi-label chip: as its key
    if (chip) { event.preventDefault(); press('key', Number(chip.dataset.k)); return; }
    const button = event.target.closest('button[id^=label-]');
    if (!button) return;
    const kind = /^label-key-[1-9]$/.test(button.id) ? 'key' : BUTTONS[button.id];
    if (!kind) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    press(kind, kind === 'key' ? Number(button.id.slice(-1)) : null);
  }, true);
  document.addEventListener('change', (event) => {  // the highlights box: redraw through the same queue
    if (event.target.closest && event.target.closest('#label-highlights')) setTimeout(() => press('refresh'), 0);
  }, true);
  new MutationObserver(onView).observe(document.body, {subtree: true, childList: true, characterData: true});
  setInterval(() => {  // the watchdog: one clock for the whole page, not a timer per press
    if (m.inflight && !m.stalled && performance.now() - m.inflight.sentAt > STALL_MS) {
      m.stalled = true;
      const n = m.queue.filter((a) => a.kind !== 'refresh').length;
      m.queue = [];
      say('Not saved: the server has not answered for ' + STALL_MS / 1000 + ' s, so the answer to the item on screen '
          + 'may not be saved' + (n ? ' and ' + n + ' later key presses were not sent' : '') + '. Keys are paused '
          + 'until it answers; if it does not, reload the page.', 'stall');
      render();
      return;
    }
    const s = m.served;
    if (m.inflight || m.queue.length || m.stalled || !s || !s.current || !s.current.pending || !onTab()) return;
    const now = performance.now();
    if (m.polls.id !== s.current.id) m.polls = {id: s.current.id, n: 0, last: now};
    if (m.polls.n < POLLS && now - m.polls.last > POLL_MS) { m.polls.n += 1; m.polls.last = now; press('refresh'); }
  }, 500);
  onView();
}
"""

# each answer event's js preprocessor: its second input ("shown", after the state) becomes what the page's loop
# is sending; the others go as they are
SHOWN_JS = "(...args) => [args[0], window.__bdLabel ? window.__bdLabel.outgoing() : '', ...args.slice(2)]"
SCREEN_HTML = '<div id="label-screen"><div class="bd-item" id="label-item-text">{}</div></div>' \
              '<div id="label-alert" role="alert" aria-live="assertive"></div>'


PRESSES_JS = ("(...args) => [args[0], window.__bdLabel ? window.__bdLabel.outgoing() : '', "
              "window.__bdLabel ? window.__bdLabel.outgoingPresses() : '', ...args.slice(3)]")
MAX_PRESSES = 50  # presses in one batch: more than a person makes while one reply is on its way
MAX_SET = 1000  # labels in one multi-label answer: far more than a project has, so only garbage is refused


@dataclass(frozen=True)
class Press:
    """One key press (or click) as the page queued it: the item on screen then, and what was pressed."""
    item: int | None
    kind: str  # "key", "accept", "skip", "set" or (multi-label) "save"
    key: int = 0  # the number key (kind "key")
    label: str | None = None  # the label chosen from the list (kind "set")
    labels: tuple[str, ...] | None = None  # multi-label: the whole set on screen ("save", or the "accept"ed one)


def parse_presses(value) -> list[Press]:
    """``"12:k2,13:s,14:a"`` — item 12 key 2, item 13 skip, item 14 accept — as the page sends what it queued;
    in a multi-label project ``"15:m=%5B%22food%22%5D"`` saves the set ``["food"]`` on item 15 and ``"16:a=…"``
    accepts the suggested set shown (the set is JSON, URL-encoded, so that no label can break the list apart).
    Anything else is refused: a malformed press is not guessed at."""
    presses = []
    for part in [p for p in str(value or "").split(",") if p.strip()][:MAX_PRESSES + 1]:
        item, _, action = part.strip().partition(":")
        labels = _press_set(action[2:], part) if action[:2] in ("m=", "a=") else None
        if not item.isdigit() or not (labels is not None or action in ("a", "s") or len(action) == 2
                                      and action[0] == "k" and action[1] in "123456789"):
            raise ValueError(f"Not saved: {part[:40]!r} is not a key press this page sends. Reload the page.")
        kind = "save" if action[:2] == "m=" else {"a": "accept", "s": "skip"}.get(action[:1], "key")
        presses.append(Press(int(item), kind, key=int(action[1]) if kind == "key" else 0, labels=labels))
    if len(presses) > MAX_PRESSES:
        raise ValueError(f"Not saved: more than {MAX_PRESSES} key presses at once. Reload the page.")
    return presses


def _press_set(encoded: str, part: str) -> tuple[str, ...]:
    """The label set a multi-label press carries (see ``parse_presses``)."""
    try:
        values = json.loads(unquote(encoded))
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) > MAX_SET or not all(isinstance(v, str) for v in values):
        raise ValueError(f"Not saved: {part[:40]!r} is not a label set this page sends. Reload the page.")
    return tuple(sorted(set(values)))


@dataclass(frozen=True)
class Shown:
    """What an answer says it answers: the id of the item on screen when the key was pressed (None: it did not
    say), and the page's ticket for that press, echoed in the reply so the page knows which press it answers."""
    item: int | None
    ticket: str = ""


def parse_shown(value) -> Shown:
    """``"12@7"`` (item 12, ticket 7) as the page sends it, or ``"12"`` / ``12`` from an API client."""
    item, _, ticket = str("" if value is None else value).strip().partition("@")
    return Shown(int(item) if item.isdigit() else None, ticket if ticket.isdigit() else "")


def item_html(text: str, words: list[tuple[str, float | None]] | None = None, *, note: str = "",
              element_id: str | None = None) -> str:
    """The text to label, large; with ``words`` (the text in pieces, each with its signed score, None for the
    gaps between words) its words are tinted (red: towards the suggested class, blue: away). Everything from the
    user's data is escaped."""
    if words:
        scale = max((abs(s) for _, s in words if s is not None), default=0.0) or 1.0
        body = "".join(esc(piece) if score is None else _tinted(piece, score / scale) for piece, score in words)
    else:
        body = esc(text)
    footer = f'<div class="bd-item-note">{esc(note)}</div>' if note else ""
    where = f' id="{element_id}"' if element_id else ""
    return f'<div class="bd-item"{where}>{body}</div>{footer}'


def card_html(item_id: int, body: str, *, suggested: str | None = None, highlights_pending: bool = False,
              choice: SetChoice | None = None) -> str:
    """One item as the page holds it: ``body`` (``item_html``) with the item's id and suggestion; a multi-label
    item (``choice``) also carries its labels as toggles, its current set and the suggested set, as JSON."""
    attrs = f' data-item-id="{int(item_id)}"'
    if choice is not None:
        attrs += ' data-multi="1"'
        suggested = None if choice.suggested is None else json.dumps(list(choice.suggested), ensure_ascii=False)
        if choice.current is not None:
            attrs += f' data-now="{esc(json.dumps(list(choice.current), ensure_ascii=False))}"'
        body += toggles_html(choice)
    if suggested is not None:
        attrs += f' data-suggested="{esc(suggested)}"'
    if highlights_pending:
        attrs += ' data-highlights="pending"'
    return f'<div class="bd-card"{attrs}>{body}</div>'


@dataclass(frozen=True)
class SetChoice:
    """A multi-label item's choice as the page draws it: every label of the project in order, each with the
    model's probability and threshold when there is a model, the item's current set and the suggested one."""
    labels: tuple[str, ...]
    scores: dict  # label → (probability, threshold); empty without a model
    current: tuple[str, ...] | None  # None: unlabeled; (): no label applies
    suggested: tuple[str, ...] | None  # None: no suggestion


def toggles_html(choice: SetChoice) -> str:
    """One toggle per label (numbered 1–9, then unnumbered; the page's loop switches them on and off), one for "no
    label applies" (0), the line the loop fills with what Enter saves, and the set the item has now."""
    chips = []
    for k, label in enumerate(choice.labels, start=1):
        score = choice.scores.get(label)
        detail = f" <small>{score[0]:.0%} / {score[1]:.0%}</small>" if score else ""
        key = f"<b>{k}</b> " if k <= 9 else ""
        suggested = " bd-suggested" if choice.suggested and label in choice.suggested else ""
        title = f"probability {score[0]:.3f}, threshold {score[1]:.3f}" if score else label
        chips.append(f'<span class="bd-toggle{suggested}" data-k="{k}" data-label="{esc(label)}" '
                     f'title="{esc(title)}">{key}{esc(label)}{detail}</span>')
    chips.append('<span class="bd-toggle" data-k="0"><b>0</b> no label applies</span>')
    now = "unlabeled" if choice.current is None else ("no label applies" if not choice.current
                                                      else " + ".join(choice.current))
    return (f'<div class="bd-toggles">{"".join(chips)}</div><div class="bd-choice"></div>'
            f'<div class="bd-now">Saved now: {esc(now)}</div>')


def served_html(view: int, current: str | None, upcoming: list[str] = (), *, current_id: int | None = None,
                empty: str = "", ticket: str = "", refused: bool = False) -> str:
    """The server's view for the page: the current card (None: nothing to label, ``empty`` says why), the cards
    after it, a stamp that is new for every render, and the ticket of the press this render answers."""
    attrs = f' data-view="{int(view)}"'
    if current_id is not None:
        attrs += f' data-current="{int(current_id)}"'
    if ticket:
        attrs += f' data-ticket="{esc(ticket)}"'
    attrs += f' data-outcome="{"refused" if refused else "ok"}"'
    body = current if current is not None else f'<div class="bd-empty">{esc(empty)}</div>'
    return f'<div class="bd-served"{attrs}>{body}<div class="bd-upcoming">{"".join(upcoming)}</div></div>'


def _tinted(word: str, share: float) -> str:
    alpha = min(0.75, abs(share) * 0.75)
    color = f"rgba(220,38,38,{alpha:.2f})" if share > 0 else f"rgba(37,99,235,{alpha:.2f})"
    return f'<span style="background:{color};border-radius:3px;padding:0 2px">{esc(word)}</span>'


class Prefetcher:
    """Word highlights (integrated gradients toward the suggested class, merged into words) for the items about
    to be shown, computed one at a time in a background thread and kept in a small cache. A failure is logged
    and not kept: the next ask computes it again."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertdemo-highlights")
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, Future] = OrderedDict()

    def ask(self, run_dir: str, item_id: int, text: str, target: str | None) -> Future:
        key = (run_dir, item_id, target)
        with self._lock:
            future = self._cache.get(key)
            if future is None or future.done() and future.exception() is not None:
                future = self._cache[key] = self._pool.submit(_word_scores, run_dir, text, target)
                future.add_done_callback(_log_failure)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            return future

    def ready(self, run_dir: str, item_id: int, text: str, target: str | None) -> list[tuple[str, float]] | None:
        """The highlights if they are computed already (never waits)."""
        future = self.ask(run_dir, item_id, text, target)
        if future.done() and future.exception() is None:
            return future.result()
        return None

    def wait(self, run_dir: str, item_id: int, text: str, target: str | None, timeout: float = 30):
        return self.ask(run_dir, item_id, text, target).result(timeout=timeout)


def _log_failure(future: Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("word highlights failed (asked again when the item is next shown)", exc_info=future.exception())


def _word_scores(run_dir: str, text: str, target: str | None) -> list[tuple[str, float | None]]:
    predictor = get_predictor(run_dir)
    result = attributions(predictor, text, target=target, steps=HIGHLIGHT_STEPS)
    scores = np.asarray(result.scores)
    # the predictor's tokenize holds its tokenizer lock: predictions may be tokenizing in other threads
    pieces = text_pieces(predictor.tokenize, text, predictor.max_length, scores, special=result.special) \
        if getattr(predictor.tokenizer, "is_fast", False) else None
    if pieces is not None:
        return pieces
    out: list[tuple[str, float | None]] = []
    for word, score in word_spans(result.tokens, scores, special=result.special, word_ids=result.word_ids):
        out.extend([(" ", None), (word, score)] if out else [(word, score)])
    return out


def text_pieces(tokenize, text: str, max_length: int, scores: np.ndarray, *, special) -> list | None:
    """``text`` cut into its words (each with the summed score of its word-pieces) and the gaps between them, so
    the highlighted item reads exactly as the original: its case, accents and spacing, and the part past
    max_length (unscored). ``tokenize`` is a fast tokenizer or ``Predictor.tokenize`` (the same under the
    predictor's lock); None when the pieces do not line up with ``scores``."""
    encoded = tokenize(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    offsets, word_ids = encoded["offset_mapping"], encoded.word_ids()
    if len(offsets) != len(scores):
        return None
    words: dict[int, list] = {}  # word id → [start, end, score]
    for (start, end), word, score, is_special in zip(offsets, word_ids, scores, special):
        if is_special or word is None or end <= start:
            continue
        span = words.setdefault(word, [start, end, 0.0])
        span[0], span[1], span[2] = min(span[0], start), max(span[1], end), span[2] + float(score)
    out, at = [], 0
    for start, end, score in sorted(words.values()):
        if start < at:  # overlapping offsets (should not happen): keep the text whole rather than repeat it
            continue
        if start > at:
            out.append((text[at:start], None))
        out.append((text[start:end], score))
        at = end
    if at < len(text):
        out.append((text[at:], None))
    return out
