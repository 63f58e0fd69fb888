/** The order callback request as our schema admits it (schemas/subscribe-pro/order-callback-request.schema.json). */
type Text = string | null | undefined;
type Num = string | number | null | undefined;

export interface SpAddress {
  firstName?: Text;
  lastName?: Text;
  company?: Text;
  street1?: Text;
  street2?: Text;
  street3?: Text;
  city?: Text;
  region?: Text;
  postcode?: string | number | null;
  country?: Text;
  countryName?: Text;
  phone?: string | number | null;
}

export interface SpItem {
  productSku: string;
  shortDescription?: Text;
  qty: string | number;
  requiresShipping?: boolean | null;
  useFixedPrice?: boolean | null;
  fixedPrice?: Num;
  /** Optional: an item without one is answered without subscriptionId. */
  subscription?: { id: string | number; [k: string]: unknown } | null;
  [k: string]: unknown;
}

export interface SpCallbackRequest {
  allowSomeFailedItems?: boolean | null;
  customerId: string | number;
  customerEmail: string;
  platformCustomerId: string | number | null;
  salesOrderToken?: Text;
  shippingMethodCode?: Text;
  shippingMethodCodes?: { method_code?: Text }[] | null;
  currency: string;
  couponCodes?: (string | null)[] | null;
  payment: Record<string, Num>;
  billingAddress?: SpAddress | null;
  shippingAddress?: SpAddress | null;
  items: SpItem[];
  [k: string]: unknown;
}

export interface SpErrorItem {
  /** Absent for an item sent without a subscription. */
  subscriptionId?: string;
  errorMessage: string;
  errorClass?: string;
}
