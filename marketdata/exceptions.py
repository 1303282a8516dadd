class FeedError(Exception):
    """A market data feed failed."""


class TransientFeedError(FeedError):
    """A failure worth retrying: network trouble, rate limit, exchange unavailable."""


class PermanentFeedError(FeedError):
    """A failure retrying will not fix: unknown exchange or symbol, bad timeframe, no data."""


class UnknownMarketError(PermanentFeedError):
    """The feed does not offer this exchange/symbol/timeframe."""
