"""isseimail composer: Campaign drafts, attachments, render-once templates, frozen snapshots."""
