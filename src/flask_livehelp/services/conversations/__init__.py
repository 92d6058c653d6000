"""Conversations and their messages: start, post, accept, end, and read back.

One service, :class:`ConversationService`, assembled from one module per job:

* :mod:`.reading`: finding conversations and messages (the base class);
* :mod:`.queue`: places and waits in the queue;
* :mod:`.announcing`: frames and publishing through the hub;
* :mod:`.transcript`: writing messages and events into a transcript;
* :mod:`.starting`: opening a chat, and routing waiting chats;
* :mod:`.posting`: the hot path, a message posted in a chat;
* :mod:`.accepting` and :mod:`.ending`: who has a chat, and its end;
* :mod:`.tags`, :mod:`.pushing`: the operator's tools;
* :mod:`.by_mail`: offline messages and what comes and goes by mail.
"""

from __future__ import annotations

from .accepting import Accepting
from .by_mail import MailTranscript
from .ending import Ending
from .posting import Posting
from .pushing import PagePushing
from .tags import Tagging


class ConversationService(
    Ending, Accepting, Posting, Tagging, PagePushing, MailTranscript
):
    """Everything done to a conversation; each job in a module of its own."""


__all__ = ["ConversationService"]
