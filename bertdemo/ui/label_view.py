"""What the Label tab shows and how it feels: the item as large text with optional word highlights, the keyboard
shortcuts (a page-level script that presses the tab's buttons), and a prefetcher that computes the highlights of
the next items in the background, so an answer moves on without waiting for the model."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from bertdemo.explain.attributions import attributions
from bertdemo.explain.tokens import word_spans
from bertdemo.inference.predict import get_predictor
from bertdemo.ui.page import esc

log = logging.getLogger(__name__)

KEYS_HELP = """**Keys** (when the cursor is not in a text box): **1–9** choose that label · **Enter** accepts the
model's suggestion · **S** skips · **U** or **Backspace** undoes your last change · **?** shows or hides this help."""
HIGHLIGHT_STEPS = 24  # integrated-gradient points for the highlights: enough to rank words, quick to compute
CACHE_SIZE = 512  # highlights kept (per app), newest last

# The shortcuts press the tab's own buttons, so a key and a click do exactly the same thing. Keys typed into a
# text field, or with a modifier held, are left alone; nothing happens unless the Label tab is on screen.
KEYBOARD_JS = """
() => {
  if (window.__bertdemoKeys) return;
  window.__bertdemoKeys = true;
  document.addEventListener('keydown', (event) => {
    const tab = document.getElementById('label-panel');
    if (!tab || tab.offsetParent === null) return;
    const target = event.target;
    if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.tagName === 'SELECT'
                   || target.isContentEditable)) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    let id = null;
    if (/^[1-9]$/.test(event.key)) id = 'label-key-' + event.key;
    else if (event.key === 'Enter') id = 'label-accept';
    else if (event.key === 's' || event.key === 'S') id = 'label-skip';
    else if (event.key === 'u' || event.key === 'U' || event.key === 'Backspace') id = 'label-undo';
    else if (event.key === '?' || event.key === 'h' || event.key === 'H') id = 'label-help-toggle';
    if (id === null) return;
    const button = document.getElementById(id);
    if (!button || button.offsetParent === null || button.disabled) return;
    event.preventDefault();
    if (id !== 'label-undo' && id !== 'label-help-toggle') showNext();
    button.click();
  });
  // An answer or a skip moves to the next item, which the page already holds (hidden): show it now. The
  // server's reply renders the same item; if no reply comes (an error), the item on screen is put back.
  function showNext() {
    const next = document.querySelector('#label-next .bd-item');
    const shown = document.getElementById('label-item-text');
    if (!next || !shown || !next.innerText.trim()) return;
    const before = shown.innerHTML;
    shown.innerHTML = next.innerHTML;
    shown.classList.add('bd-pending');
    setTimeout(() => {
      const still = document.getElementById('label-item-text');
      if (still === shown && shown.classList.contains('bd-pending')) {
        shown.innerHTML = before;
        shown.classList.remove('bd-pending');
      }
    }, 8000);
  }
}
"""


def item_html(text: str, words: list[tuple[str, float | None]] | None = None, *, note: str = "",
              element_id: str = "label-item-text") -> str:
    """The text to label, large; with ``words`` (the text in pieces, each with its signed score, None for the
    gaps between words) its words are tinted (red: towards the suggested class, blue: away). Everything from the
    user's data is escaped."""
    if words:
        scale = max((abs(s) for _, s in words if s is not None), default=0.0) or 1.0
        body = "".join(esc(piece) if score is None else _tinted(piece, score / scale) for piece, score in words)
    else:
        body = esc(text)
    footer = f'<div class="bd-item-note">{esc(note)}</div>' if note else ""
    return f'<div class="bd-item" id="{element_id}">{body}</div>{footer}'


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
