#!/usr/bin/env bash
# Retrieval evaluation: Git's manual pages (Debian's git-doc, listed in corpus.txt) ingested with
# the `rag` CLI through a real embedding model (Universal Sentence Encoder lite, served offline by
# tests/js/embeddings_server.mjs), then questions.json asked with the bm25, vector and hybrid
# rankers (eval.py: hit@1, hit@5, MRR).
#
# Usage: bench/rag/eval/run.sh [--fresh] [eval.py options, e.g. --misses]
# The store is kept in build/rag-eval/ between runs (an unchanged corpus embeds nothing the second
# time); --fresh starts from an empty one. RAG_EVAL_RAG="rrf_k = 20" adds lines to [rag].
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
work=$root/build/rag-eval
if [ "${1:-}" = --fresh ]; then
  rm -rf "$work"
  shift
fi
docs=/usr/share/doc/git-doc
[ -d "$docs" ] || { echo "git-doc is missing: run ./scripts/install-deps (or apt-get install git-doc)" >&2; exit 1; }
[ -d tests/js/node_modules/@energetic-ai/embeddings ] || { echo "tests/js/node_modules is missing: run ./scripts/install-deps" >&2; exit 1; }
cmake --build build --target agente-hibrido >/dev/null

mkdir -p "$work/corpus"
grep -v '^#' bench/rag/eval/corpus.txt | while read -r name; do
  [ -z "$name" ] || cmp -s "$docs/$name" "$work/corpus/$name" || cp "$docs/$name" "$work/corpus/$name"
done

# The model server on an ephemeral loopback port; its first line is "PORT <n>" once it is ready.
coproc model { exec node tests/js/embeddings_server.mjs --port 0; }
model_pid=$model_PID
trap 'kill $model_pid 2>/dev/null || true' EXIT
read -r -t 300 word port <&"${model[0]}" || { echo "the embeddings server did not start" >&2; exit 1; }
[ "$word" = PORT ] || { echo "the embeddings server said: $word $port" >&2; exit 1; }

# Generous upstream deadlines: the model runs on the CPU, a batch takes seconds on a busy machine.
cat >"$work/server.conf" <<EOF
[providers.use]
base_url = "http://127.0.0.1:$port/v1"
first_byte_timeout = 600
total_timeout = 600

[models."use-lite"]
targets = [{ provider = "use", model = "universal-sentence-encoder-lite" }]

[rag]
embedding_model = "use-lite"
embedding_batch_size = 16
state_dir = "$work/state"
${RAG_EVAL_RAG:-}
EOF

start=$(date +%s)
build/agente-hibrido -c "$work/server.conf" rag ingest --store git-doc --json "$work/corpus" >"$work/ingest.json"
echo "ingest: $(tr -d ' \n' <"$work/ingest.json") in $(( $(date +%s) - start )) s" >&2
python3 bench/rag/eval/eval.py --bin build/agente-hibrido --config "$work/server.conf" --store git-doc "$@"
