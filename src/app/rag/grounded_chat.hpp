// Chat completions grounded in vector stores (issue 19, "answers with citations"): a
// [models."NAME"] (or an [agents.ID]) with `vector_stores = [...]` retrieves from them in the dirty
// pool for the last user message and the turns before it (retrieval_query()), puts the numbered
// sources into the upstream prompt (grounded_prompt.hpp), and answers OpenAI's chat.completion (or
// its chunks) with `citations`: each [n] the answer uses mapped to file, filename, store, section,
// page and the quoted chunk; in a stream, on the last chunk before [DONE] (and OpenAI's usage chunk
// when asked for). The upstream's usage is passed on as it reported it. A question the stores have
// nothing for is answered so, without an upstream call. The upstream call is the gateway's own
// attempt loop (retries, fallback, breakers).
#pragma once

#include "app/gateway/gateway.hpp"

#include <agente/dirty.hpp>

namespace agente::rag {

// Sets gw.grounded_chat (the /v1/chat/completions route of such a model) and gw.grounded_complete
// (the same answer as text, for the agent): one path for both. `dirty` null or `configured` false: such models answer 503 / 404 saying
// what is missing, as the files and vector stores API does.
void install_grounded_chat(gateway::Gateway& gw, DirtyClient* dirty, bool configured);

}  // namespace agente::rag
