package badger

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/jmapd/jmapd/store"
)

// PrincipalType is the record type name principals are stored under.
const PrincipalType = store.PrincipalRecords

type principalTx struct{ t *tx }

func (t *tx) Principals() store.PrincipalTx { return principalTx{t} }

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func (p principalTx) Get(id store.PrincipalID) (*store.Principal, error) {
	v, err := p.t.Get(store.SystemAccount, PrincipalType, string(id))
	if err != nil {
		return nil, err
	}
	var out store.Principal
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, fmt.Errorf("principal %s: %w", id, err)
	}
	return &out, nil
}

func (p principalTx) ByEmail(email string) (*store.Principal, error) {
	v, err := p.t.get(principalEmailKey(normEmail(email)))
	if err != nil {
		return nil, err
	}
	return p.Get(store.PrincipalID(v))
}

func (p principalTx) All() iter.Seq2[*store.Principal, error] {
	return func(yield func(*store.Principal, error) bool) {
		for o, err := range p.t.Scan(store.SystemAccount, PrincipalType) {
			if err != nil {
				yield(nil, err)
				return
			}
			var pr store.Principal
			if err := json.Unmarshal(o.Data, &pr); err != nil {
				yield(nil, fmt.Errorf("principal %s: %w", o.ID, err))
				return
			}
			if !yield(&pr, nil) {
				return
			}
		}
	}
}

func (p principalTx) Create(pr *store.Principal) error {
	if pr.ID == "" {
		return errors.New("badger: principal without id")
	}
	if pr.Email != "" {
		key := principalEmailKey(normEmail(pr.Email))
		if ok, err := p.t.exists(key); err != nil {
			return err
		} else if ok {
			return store.ErrExists
		}
		if err := p.t.txn.Set(key, []byte(pr.ID)); err != nil {
			return err
		}
	}
	v, err := json.Marshal(pr)
	if err != nil {
		return err
	}
	return p.t.Create(store.SystemAccount, PrincipalType, string(pr.ID), v)
}

func (p principalTx) Update(pr *store.Principal) error {
	old, err := p.Get(pr.ID)
	if err != nil {
		return err
	}
	if normEmail(old.Email) != normEmail(pr.Email) {
		if pr.Email != "" {
			key := principalEmailKey(normEmail(pr.Email))
			if ok, err := p.t.exists(key); err != nil {
				return err
			} else if ok {
				return store.ErrExists
			}
			if err := p.t.txn.Set(key, []byte(pr.ID)); err != nil {
				return err
			}
		}
		if old.Email != "" {
			if err := p.t.txn.Delete(principalEmailKey(normEmail(old.Email))); err != nil {
				return err
			}
		}
	}
	v, err := json.Marshal(pr)
	if err != nil {
		return err
	}
	return p.t.Put(store.SystemAccount, PrincipalType, string(pr.ID), v)
}

func (p principalTx) Delete(id store.PrincipalID) error {
	old, err := p.Get(id)
	if err != nil {
		return err
	}
	if old.Email != "" {
		if err := p.t.txn.Delete(principalEmailKey(normEmail(old.Email))); err != nil {
			return err
		}
	}
	if err := p.t.txn.Delete(passwordKey(id)); err != nil {
		return err
	}
	for tok, err := range p.Tokens(id) {
		if err != nil {
			return err
		}
		if err := p.DeleteToken(tok.ID); err != nil {
			return err
		}
	}
	return p.t.Delete(store.SystemAccount, PrincipalType, string(id))
}

func (p principalTx) PasswordHash(id store.PrincipalID) (string, error) {
	v, err := p.t.get(passwordKey(id))
	return string(v), err
}

func (p principalTx) SetPasswordHash(id store.PrincipalID, hash string) error {
	return p.t.txn.Set(passwordKey(id), []byte(hash))
}

func (p principalTx) CreateToken(tok *store.Token, secretHash string) error {
	if ok, err := p.t.exists(tokenKey(secretHash)); err != nil {
		return err
	} else if ok {
		return store.ErrExists
	}
	v, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	if err := p.t.txn.Set(tokenKey(secretHash), v); err != nil {
		return err
	}
	return p.t.txn.Set(tokenPrincipalKey(tok.Principal, tok.ID), []byte(secretHash))
}

func (p principalTx) TokenBySecret(secretHash string) (*store.Token, error) {
	v, err := p.t.get(tokenKey(secretHash))
	if err != nil {
		return nil, err
	}
	var tok store.Token
	if err := json.Unmarshal(v, &tok); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return &tok, nil
}

func (p principalTx) Tokens(id store.PrincipalID) iter.Seq2[*store.Token, error] {
	return func(yield func(*store.Token, error) bool) {
		prefix := tokenPrincipalPrefix(id)
		var hashes []string
		it := p.t.txn.NewIterator(badgerIterOpts(prefix))
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				yield(nil, err)
				return
			}
			hashes = append(hashes, string(v))
		}
		it.Close()
		for _, h := range hashes {
			tok, err := p.TokenBySecret(h)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if !yield(tok, err) || err != nil {
				return
			}
		}
	}
}

// DeleteToken revokes a token by its id, whoever owns it.
func (p principalTx) DeleteToken(tokenID string) error {
	for pr, err := range p.All() {
		if err != nil {
			return err
		}
		key := tokenPrincipalKey(pr.ID, tokenID)
		v, err := p.t.get(key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if err := p.t.txn.Delete(tokenKey(string(v))); err != nil {
			return err
		}
		return p.t.txn.Delete(key)
	}
	return store.ErrNotFound
}
