"""LLM decision makers: Anthropic, OpenAI, DeepSeek, Gemini and any OpenAI-compatible server.

`bots.llm.base` holds the flow every provider shares (prompt, rate limit, retries, repair, budget,
recorded calls); one module per provider implements one HTTP attempt with its official SDK. Which
providers exist, their settings, models and prices, and how each is built is the registry's
(bots.providers).
"""
