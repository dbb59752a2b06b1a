import hashlib

import factory
from django.utils import timezone

from threads.models import Attachment, Message, Thread
from workspaces.tests.factories import WorkspaceFactory


class ThreadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Thread

    workspace = factory.SubFactory(WorkspaceFactory)
    subject = factory.Sequence(lambda n: f"Pricing for rollout {n}")
    primary_contact_email = "dana@customer.example"
    first_message_at = factory.LazyFunction(timezone.now)
    last_message_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    workspace = factory.SelfAttribute("thread.workspace")
    thread = factory.SubFactory(ThreadFactory, workspace=factory.SelfAttribute("..workspace"))
    message_id = factory.Sequence(lambda n: f"msg-{n}@customer.example")
    subject = factory.SelfAttribute("thread.subject")
    from_email = "dana@customer.example"
    sent_at = factory.LazyFunction(timezone.now)
    text = "Our budget is $40,000 for this year."
    reply_text = factory.SelfAttribute("text")
    raw = factory.LazyAttribute(lambda m: f"Message-ID: <{m.message_id}>\r\n\r\n{m.text}\r\n".encode())
    raw_sha256 = factory.LazyAttribute(lambda m: hashlib.sha256(m.raw).hexdigest())
    raw_size = factory.LazyAttribute(lambda m: len(m.raw))


class AttachmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attachment

    message = factory.SubFactory(MessageFactory, workspace=factory.SelfAttribute("..workspace"))
    workspace = factory.SubFactory(WorkspaceFactory)
    filename = "quote.pdf"
    content_type = "application/pdf"
    size = 1234
    sha256 = "0" * 64
