from core.errors import DomainConflict, DomainError


class BotError(DomainError):
    """A bot command could not be carried out; the message is shown to the user (400)."""


class InvalidTransition(BotError, DomainConflict):
    """The bot's status does not allow this command (e.g. pausing a stopped bot): 409."""


class BotConfigurationError(BotError):
    """The bot cannot run as configured (missing API key, live mode without confirmation, ...): 400."""


class BotBusy(BotError, DomainConflict):
    """Another cycle or command of this bot holds its lease: 409."""
