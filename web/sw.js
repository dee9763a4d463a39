// Service worker: shows chatd push notifications and focuses the app on click.
'use strict';

self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (_) { data = {}; }
  const m = data.message || {};
  const title = m.sender ? m.sender : 'chatd';
  event.waitUntil(self.registration.showNotification(title, {
    body: m.body || 'New message',
    tag: 'room-' + (data.room_id || ''),
    data: { room_id: data.room_id },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const all = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const c of all) { if ('focus' in c) return c.focus(); }
    return self.clients.openWindow('/');
  })());
});
