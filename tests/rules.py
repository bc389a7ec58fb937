"""Project channel rules used by the tests (REALTIME["CHANNEL_RULE"])."""


def allow_rooms(user, channel):
    return True if channel.startswith("room.") else None


def allow_extras(user, channel):
    return True if channel.startswith("extra") else None
