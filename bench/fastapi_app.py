"""The smallest FastAPI app that answers like the other servers in the bench.

Served by bench/run as:
    /usr/bin/gunicorn -k uvicorn.workers.UvicornWorker -w 2 -b 127.0.0.1:PORT \
        --chdir bench fastapi_app:app
with Debian's python3 packages (gunicorn, python3-uvicorn, python3-fastapi). gunicorn's access log
is off by default, and uvicorn's follows it (no handlers -> no access logging).
"""
from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})
