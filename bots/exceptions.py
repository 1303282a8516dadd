class BotError(Exception):
    """A bot command could not be carried out; the message is shown to the user."""


class InvalidTransition(BotError):
    """The bot's status does not allow this command (e.g. pausing a stopped bot)."""


class BotConfigurationError(BotError):
    """The bot cannot run as configured (missing API key, live mode without confirmation, ...)."""


class BotBusy(BotError):
    """Another cycle or command of this bot holds its lease."""
