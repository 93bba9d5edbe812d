package kms

import (
	"container/list"
	"crypto/cipher"
	"time"
)

// cachedKey is an unwrapped data key held by a cache. The cache owns key and
// zeroes it on eviction; readers use aead, or copy key while holding the
// Envelope's lock.
type cachedKey struct {
	key     []byte
	aead    cipher.AEAD
	created time.Time
	uses    int
	// For the seal cache: what Seal writes into the blob.
	keyID   string
	wrapped []byte
}

// keyCache is a bounded least-recently-used map of cached keys. It is not
// safe for concurrent use; Envelope guards it with its mutex.
type keyCache struct {
	max   int
	order *list.List // front is most recently used; values are *cacheItem
	items map[string]*list.Element
}

type cacheItem struct {
	id  string
	key *cachedKey
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *keyCache) get(id string) (*cachedKey, bool) {
	el, ok := c.items[id]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheItem).key, true
}

// add stores k under id, replacing and zeroing any previous entry, and evicts
// the least recently used entries beyond the bound.
func (c *keyCache) add(id string, k *cachedKey) {
	if c.max <= 0 {
		clear(k.key)
		return
	}
	if el, ok := c.items[id]; ok {
		old := el.Value.(*cacheItem)
		if old.key != k {
			clear(old.key.key)
		}
		old.key = k
		c.order.MoveToFront(el)
		return
	}
	c.items[id] = c.order.PushFront(&cacheItem{id: id, key: k})
	for c.order.Len() > c.max {
		c.removeElement(c.order.Back())
	}
}

func (c *keyCache) remove(id string) {
	if el, ok := c.items[id]; ok {
		c.removeElement(el)
	}
}

func (c *keyCache) removeElement(el *list.Element) {
	it := el.Value.(*cacheItem)
	c.order.Remove(el)
	delete(c.items, it.id)
	clear(it.key.key)
}

func (c *keyCache) len() int { return c.order.Len() }

// purge zeroes and drops every entry.
func (c *keyCache) purge() {
	for c.order.Len() > 0 {
		c.removeElement(c.order.Back())
	}
}
