"""Which environment variables are credentials: the one rule, for every layer.

Node scripts are untrusted, so the executors keep these variables out of their environment; the
LLM proposer refuses to read its API key from a variable this rule would not hide from them.
"""

from __future__ import annotations

import re

# A name containing any of these words (case-insensitive) is treated as a secret.
SECRET_WORDS = (
    "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "AUTH", "COOKIE",
    "SESSION", "PRIVATE", "DSN",
)
# Whole families of provider variables (also their endpoints and org ids: they identify accounts).
SECRET_PREFIXES = (
    "AWS_", "OPENAI_", "ANTHROPIC_", "AZURE_", "GOOGLE_APPLICATION_CREDENTIALS", "GCLOUD_", "HF_TOKEN",
    "HUGGING_FACE_", "GITHUB_TOKEN", "GH_", "GITLAB_", "BITBUCKET_", "NPM_", "PYPI_", "TWINE_",
    "KAGGLE_", "WANDB_API", "COHERE_", "MISTRAL_", "GROQ_", "GEMINI_", "DEEPSEEK_", "TOGETHER_",
    "REPLICATE_", "OPENROUTER_", "XAI_", "LITELLM_", "DATABRICKS_", "SNOWFLAKE_", "VAULT_", "SLACK_",
    "STRIPE_", "TWILIO_", "SENTRY_", "DATABASE_URL", "REDIS_URL", "MONGO",
)
# A value like scheme://user:password@host carries a password whatever the variable is called.
_URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][\w+.-]*://[^/@\s:]*:[^/@\s]+@")

def is_secret(name: str, value: str = "") -> bool:
    """True if a variable should not reach untrusted code (by its name, or a password in a URL)."""
    upper = name.upper()
    if any(word in upper for word in SECRET_WORDS) or upper.startswith(SECRET_PREFIXES):
        return True
    return bool(_URL_WITH_PASSWORD.match(value))
