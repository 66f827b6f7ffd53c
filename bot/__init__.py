"""A Telegram bot answering questions about Chinese cross-border e-commerce, with citations."""

__version__ = "0.1.0"
