#!/usr/bin/env python3
"""Retrieval quality of `agente-hibrido rag search` on a store ingested by run.sh: for each question of
questions.json and each ranker, the rank of the first chunk from an expected file among the top
`--depth`; then hit@1, hit@5 and MRR (reciprocal rank, 0 past the depth) per ranker.

Usage: eval.py --bin BUILD/agente-hibrido --config server.conf --store NAME [--questions questions.json]
               [--rankers bm25,vector,hybrid] [--depth 10] [--json] [--misses]
Each search is a run of the real CLI (the question embedded through the gateway, as an operator's)."""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Deadline for one search: the question's embedding on a busy machine.
SEARCH_TIMEOUT = 120


def search(args, ranker, question):
    argv = [args.bin, "-c", args.config, "rag", "search", "--store", args.store, "--json", "--ranker", ranker,
            "--max-results", str(args.depth), question]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=SEARCH_TIMEOUT)
    if r.returncode != 0:
        sys.exit(f"search failed ({ranker}): {r.stderr.strip()}")
    return [(os.path.basename(h["filename"]), h["chunk"]["section"]) for h in json.loads(r.stdout)["data"]]


def first_rank(hits, expected):
    for i, (name, _) in enumerate(hits, 1):
        if name in expected:
            return i
    return 0


def measure(ranks):
    n = len(ranks)
    return {"hit@1": sum(1 for r in ranks if r == 1) / n,
            "hit@5": sum(1 for r in ranks if 1 <= r <= 5) / n,
            "mrr": sum(1 / r for r in ranks if r) / n}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--questions", default=os.path.join(HERE, "questions.json"))
    p.add_argument("--rankers", default="bm25,vector,hybrid")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--json", action="store_true", help="the figures as JSON")
    p.add_argument("--misses", action="store_true", help="list the questions a ranker missed in its top 5")
    args = p.parse_args()
    questions = json.load(open(args.questions))
    results = {}
    for ranker in args.rankers.split(","):
        ranks = []
        for item in questions:
            hits = search(args, ranker, item["q"])
            rank = first_rank(hits, set(item["files"]))
            ranks.append(rank)
            if args.misses and not 1 <= rank <= 5:
                print(f"  {ranker} missed ({rank or '-'}): {item['q']} -> {hits[:3]}", file=sys.stderr)
        results[ranker] = measure(ranks)
        results[ranker]["ranks"] = ranks
    if args.json:
        print(json.dumps(results))
        return
    print(f"{len(questions)} questions, top {args.depth}")
    print("| ranker | hit@1 | hit@5 | MRR |")
    print("|---|---|---|---|")
    for ranker, m in results.items():
        print(f"| {ranker} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | {m['mrr']:.3f} |")


if __name__ == "__main__":
    main()
