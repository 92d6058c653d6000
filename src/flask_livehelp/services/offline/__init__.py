"""Offline messages: stored first, then mailed to the shop and to the customer.

An offline message is a conversation no operator took (``status="missed"``)
with the visitor's text as message 1 and a ``reply_token`` of its own. Its
mails go through the outbox in the same transaction, so the customer is told
"sent" only once the message and its mails are stored.

Who replies where:

* With ``LIVEHELP_REPLY_ADDRESS`` (e.g. ``reply+{token}@shop.example``) every
  mail about a conversation has that conversation's reply address as
  Reply-To, for staff and customer alike. A reply from either side lands in
  the transcript (see :mod:`..inbound`), and we pass it on: the customer's
  reply to the staff, the staff's reply to the customer. So a plain "Reply"
  in the staff's mail program still reaches the customer, and nothing said
  by mail is missing from the panel.
* Without it, nothing can come back to us, so mails point at the people:
  the staff's Reply-To is the customer's address, the customer's is the
  shop's mailbox (``OFFLINE_MAILBOX``, else the department's address).

Either way the visitor's own input is never a header as typed: names and
addresses with line breaks are refused, addresses must be one plain address,
and only the copy of their own message ever goes to an address they typed.
"""

from __future__ import annotations

from .answers import MailAnswers
from .staff_views import StaffViews
from .submission import OfflineSubmission
from .timed_out import TimedOutChats
from .transcripts import Transcripts


class OfflineService(
    OfflineSubmission, TimedOutChats, MailAnswers, Transcripts, StaffViews
):
    """Everything about offline messages; each job in a module of its own:

    :mod:`.submission` (the offline form), :mod:`.timed_out` (a chat nobody
    took), :mod:`.answers` (answering by mail), :mod:`.transcripts`,
    :mod:`.staff_views` (the panel's list), :mod:`.addressing` (who gets
    what), :mod:`.composing` (writing the mails), :mod:`.rates` (how many)
    and :mod:`.fields` (checking what the visitor typed).
    """


__all__ = ["OfflineService"]
