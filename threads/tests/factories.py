import hashlib

import factory

from threads.models import (
    Attachment,
    ImapCursor,
    InboundToken,
    MailImport,
    Message,
    MessageConflict,
    MessageReference,
    Thread,
    ThreadTerm,
)
from workspaces.tests.factories import WorkspaceFactory

RAW = b"From: Ana <ana@customer.example>\r\nTo: rep@team.example\r\nSubject: Hello\r\nMessage-ID: <f@x>\r\n\r\nHi\r\n"


class ThreadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Thread

    workspace = factory.SubFactory(WorkspaceFactory)
    subject = factory.Sequence(lambda n: f"Pricing question {n}")
    base_subject = factory.LazyAttribute(lambda t: t.subject.casefold())
    primary_contact_email = "ana@customer.example"
    participants = factory.LazyFunction(lambda: ["ana@customer.example", "rep@team.example"])
    message_count = 1


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    workspace = factory.SubFactory(WorkspaceFactory)
    thread = factory.SubFactory(ThreadFactory, workspace=factory.SelfAttribute("..workspace"))
    message_id = factory.Sequence(lambda n: f"m{n}@factory.example")
    subject = "Hello"
    base_subject = "hello"
    from_email = "ana@customer.example"
    participants = factory.LazyFunction(lambda: ["ana@customer.example", "rep@team.example"])
    text = "Hi"
    reply_text = "Hi"
    raw = RAW
    raw_sha256 = factory.LazyAttribute(lambda m: hashlib.sha256(bytes(m.raw)).hexdigest())
    raw_size = factory.LazyAttribute(lambda m: len(m.raw))
    source = "factory"


class AttachmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attachment

    workspace = factory.SubFactory(WorkspaceFactory)
    message = factory.SubFactory(MessageFactory, workspace=factory.SelfAttribute("..workspace"))
    filename = "quote.pdf"
    content_type = "application/pdf"
    size = 3
    sha256 = hashlib.sha256(b"pdf").hexdigest()


class MessageReferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageReference

    workspace = factory.SubFactory(WorkspaceFactory)
    message = factory.SubFactory(MessageFactory, workspace=factory.SelfAttribute("..workspace"))
    ref_id = "parent@factory.example"


class ThreadTermFactory(factory.django.DjangoModelFactory):
    """A term beside those the trigger keeps (for the RLS matrix; search reads them all)."""

    class Meta:
        model = ThreadTerm

    workspace = factory.SubFactory(WorkspaceFactory)
    thread = factory.SubFactory(ThreadFactory, workspace=factory.SelfAttribute("..workspace"))
    term = "factoryterm"


class InboundTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboundToken

    workspace = factory.SubFactory(WorkspaceFactory)
    token_sha256 = hashlib.sha256(b"secret").hexdigest()


class ImapCursorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImapCursor

    workspace = factory.SubFactory(WorkspaceFactory)
    mailbox_key = factory.Sequence(lambda n: f"user@imap.example:993/INBOX{n}")
    uidvalidity = 1
    last_uid = 0


class MessageConflictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageConflict

    workspace = factory.SubFactory(WorkspaceFactory)
    kept = factory.SubFactory(MessageFactory, workspace=factory.SelfAttribute("..workspace"))
    message_id = factory.LazyAttribute(lambda c: c.kept.message_id)
    raw = RAW + b"other content\r\n"
    raw_sha256 = factory.LazyAttribute(lambda c: hashlib.sha256(bytes(c.raw)).hexdigest())
    raw_size = factory.LazyAttribute(lambda c: len(c.raw))
    source = "factory"


class MailImportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MailImport

    workspace = factory.SubFactory(WorkspaceFactory)
    label = "factory import"
    messages_read = 1
    messages_new = 1
