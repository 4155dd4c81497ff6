"""Write the embedded toy QA data: data/toy/{train,validation,test}.jsonl.

    python scripts/make_toy_data.py [--out data/toy] [--seed 0]
"""

import argparse
from collections import Counter

from qa_seq2seq.data.toy import generate, write_splits

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
parser.add_argument("--out", default="data/toy", help="output folder (default: data/toy)")
parser.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
args = parser.parse_args()
write_splits(args.out, args.seed)
for split, rows in generate(args.seed).items():
    families = ", ".join(f"{k} {v}" for k, v in sorted(Counter(r["family"] for r in rows).items()))
    print(f"{args.out}/{split}.jsonl: {len(rows)} rows ({families})")
