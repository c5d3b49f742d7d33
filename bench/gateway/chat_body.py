#!/usr/bin/env python3
"""Prints a chat request the size the agent's users send (~21 KB): a system prompt, 30 turns of
history with accents and quotes, 8 tool definitions. The bench's short body hides what reading a body
costs; this one shows it. Usage: chat_body.py MODEL > FILE"""
import json
import sys

model = sys.argv[1] if len(sys.argv) > 1 else "bench"
messages = [{"role": "system", "content": "You are a helpful assistant. " * 20}]
for i in range(30):
    messages.append({"role": "user",
                     "content": "Pregunta número %d: ¿cómo configuro el servidor para que use \"keepalive\"?\n" % i * 3})
    messages.append({"role": "assistant",
                     "content": "Respuesta %d: edite server.conf y ponga keepalive = 75; luego systemctl reload.\n" % i * 4})
tools = [{"type": "function", "function": {
    "name": f"tool_{i}", "description": f"Does thing {i}",
    "parameters": {"type": "object", "properties": {
        "q": {"type": "string"}, "n": {"type": "integer", "minimum": 1, "maximum": 100}}}}} for i in range(8)]
sys.stdout.write(json.dumps({"model": model, "messages": messages, "tools": tools, "temperature": 0.2},
                            ensure_ascii=False))
